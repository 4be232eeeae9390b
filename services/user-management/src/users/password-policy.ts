/** bcrypt reads only the first 72 bytes; a longer password would be silently cut, so it is refused. */
export const maxPasswordBytes = 72;
export const minPasswordLength = 8;

/**
 * The original service's rule: at least 8 characters with a digit, a lower-case and an upper-case letter and
 * one of `!@#$%^&*`, and no whitespace. Other characters are allowed.
 */
export function isValidPassword(password: string): boolean {
  return (
    [...password].length >= minPasswordLength &&
    Buffer.byteLength(password, 'utf8') <= maxPasswordBytes &&
    /[0-9]/.test(password) &&
    /[a-z]/.test(password) &&
    /[A-Z]/.test(password) &&
    /[!@#$%^&*]/.test(password) &&
    !/\s/u.test(password)
  );
}
