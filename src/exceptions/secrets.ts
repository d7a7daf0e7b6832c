import { randomBytes } from 'node:crypto';

// The sealing itself is the platform's (platform/secrets.ts), shared with the WAL's HTTP targets.
export { createSecretBox, type SecretBox, SecretUnreadableError } from '../platform/secrets.ts';

/** A Standard Webhooks signing secret: whsec_ and 32 random bytes in base64 (as WAL targets take). */
export const newSigningSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
