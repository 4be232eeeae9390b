import { describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/users/password-hash.js';
import { isValidPassword } from '../../src/users/password-policy.js';

describe('verifyPassword', () => {
  // A published bcrypt test vector (OpenBSD / John the Ripper), in the `$2a$` form Spring's BCryptPasswordEncoder writes.
  const javaHash = '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';

  it('accepts a $2a$ hash made by the Java service, also with Spring\'s {bcrypt} prefix', async () => {
    expect(await verifyPassword('U*U', javaHash)).toBe(true);
    expect(await verifyPassword('U*U', `{bcrypt}${javaHash}`)).toBe(true);
    expect(await verifyPassword('U*V', javaHash)).toBe(false);
  });

  it('accepts the $2b$ hashes it makes (cost 10) and the equivalent $2y$ spelling', async () => {
    const hash = await hashPassword('Pass@123');
    expect(hash).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(await verifyPassword('Pass@123', hash)).toBe(true);
    expect(await verifyPassword('Pass@124', hash)).toBe(false);
    expect(await verifyPassword('Pass@123', hash.replace(/^\$2b\$/, () => '$2y$'))).toBe(true);
  });

  it('treats anything that is not a bcrypt hash as a mismatch', async () => {
    expect(await verifyPassword('Pass@123', 'Pass@123')).toBe(false);
    expect(await verifyPassword('', '')).toBe(false);
    expect(await verifyPassword('U*U', '$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW')).toBe(false);
  });
});

describe('isValidPassword', () => {
  it.each(['Pass@123', 'Aa1!Aa1!', 'Ünïcödé1a@B', `Pass@123${'x'.repeat(64)}`])('accepts %j', (password) => {
    expect(isValidPassword(password)).toBe(true);
  });

  it.each(['Pa@1abc', 'Pass@word', 'PASS@123', 'pass@123', 'Pass1234', 'Pass @123', 'Pass@123\n', `Pass@123${'x'.repeat(65)}`, `Pass@12${'é'.repeat(33)}`])(
    'refuses %j',
    (password) => {
      expect(isValidPassword(password)).toBe(false);
    },
  );
});
