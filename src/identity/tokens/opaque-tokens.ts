import { createHash, randomBytes } from 'node:crypto';

/** A new opaque secret: the prefix (`rt_`, `mk_`) then 32 random bytes in base64url. */
export function randomToken(prefix: string): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** The SHA-256 of a secret in hex: what the database keeps instead of the secret itself. */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
