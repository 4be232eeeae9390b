import bcrypt from 'bcrypt';

/** Cost 10: the Spring BCryptPasswordEncoder default, so old and new hashes cost the same to check. */
export const bcryptCost = 10;

/** Hashes with bcrypt (`$2b$10$...`); runs on libuv's thread pool, not the event loop. */
export function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(password, bcryptCost);
}

/**
 * Checks a password against a stored hash: `$2b$` from this service and `$2a$`/`$2y$` from the Java one
 * (with or without Spring's `{bcrypt}` prefix). Anything else is a mismatch, never an exception.
 */
export async function verifyPassword(password: string, storedHash: string): Promise<boolean> {
  const hash = storedHash.startsWith('{bcrypt}') ? storedHash.slice('{bcrypt}'.length) : storedHash;
  if (!/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) return false;
  // `$2y$` (crypt_blowfish) is the same algorithm as `$2b$`, which is the only spelling the bcrypt module reads.
  return bcrypt.compare(password, hash.replace(/^\$2y\$/, () => '$2b$'));
}
