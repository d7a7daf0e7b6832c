import { Type } from 'typebox';
import { DISPLAY_NAME, EMAIL, SLUG } from '../account-fields.ts';

const TenantSlug = Type.String({
  ...SLUG,
  description: 'Slug of the tenant (shop) to sign in to',
});
const Email = Type.String({ ...EMAIL, description: 'Compared case-insensitively' });

export const RegisterBody = Type.Object(
  {
    tenant: TenantSlug,
    email: Email,
    password: Type.String({ minLength: 12, maxLength: 128 }),
    name: Type.String(DISPLAY_NAME),
  },
  { additionalProperties: false },
);

export const LoginBody = Type.Object(
  { tenant: TenantSlug, email: Email, password: Type.String({ minLength: 1, maxLength: 128 }) },
  { additionalProperties: false },
);

export const RefreshBody = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);

export const ValidateBody = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 4096, description: 'An access token' }) },
  { additionalProperties: false },
);

export const TokenPairView = Type.Object({
  accessToken: Type.String({ description: 'JWT (EdDSA), sent as `Authorization: Bearer …`' }),
  refreshToken: Type.String({ description: 'Opaque, single use: each refresh returns a new one' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
});

export const IntrospectionView = Type.Union([
  Type.Object({
    active: Type.Literal(true),
    sub: Type.String({ format: 'uuid', description: 'User id' }),
    tenantId: Type.String({ format: 'uuid' }),
    tenant: Type.String({ description: 'Tenant slug' }),
    role: Type.String(),
    exp: Type.Integer({ description: 'Expiry, seconds since the epoch' }),
    iat: Type.Integer({ description: 'Issued at, seconds since the epoch' }),
    sessionId: Type.String({ format: 'uuid' }),
  }),
  Type.Object({ active: Type.Literal(false) }),
]);
