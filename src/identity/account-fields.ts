/**
 * The constraints of the fields an account is made of, one definition each: the schemas of
 * POST /tenants, POST /users and POST /auth/register are built from them, and the CLI's
 * `tenants create` and `users create` check their flags against them (the stores trust callers).
 */
export const SLUG = { pattern: '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' } as const;
export const EMAIL = { format: 'email', maxLength: 254 } as const;
export const DISPLAY_NAME = { minLength: 1, maxLength: 200 } as const;
