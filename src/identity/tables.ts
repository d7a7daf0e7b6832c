import type { ColumnType, Generated } from 'kysely';
import type { Role } from '../platform/http/index.ts';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export type TenantsTable = {
  id: string;
  slug: string;
  name: string;
  status: Generated<'active' | 'suspended'>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type UsersTable = {
  id: string;
  tenant_id: string;
  email: string;
  password_hash: string;
  name: string;
  phone: string | null;
  role: Role;
  /** 'erased' (migration 0013): personal data blanked, kept for audit; the API treats it as absent. */
  status: Generated<'active' | 'disabled' | 'erased'>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type AddressesTable = {
  id: string;
  tenant_id: string;
  user_id: string;
  type: 'BILLING' | 'SHIPPING';
  recipient: string;
  line1: string;
  line2: string | null;
  city: string;
  region: string | null;
  postal_code: string;
  country: string;
  phone: string | null;
  is_default: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type RefreshTokensTable = {
  id: string;
  tenant_id: string;
  user_id: string;
  family_id: string;
  token_hash: string;
  expires_at: Timestamp;
  created_at: Timestamp;
  rotated_at: Timestamp | null;
  revoked_at: Timestamp | null;
};

export type ApiKeysTable = {
  id: string;
  tenant_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  permissions: string[];
  /** WAL namespaces the key may use (migration 0003). */
  namespaces: Generated<string[]>;
  created_by: string | null;
  created_at: Timestamp;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
  /** After it the key is refused as a revoked one is; null never expires (migration 0046). */
  expires_at: Timestamp | null;
};

export type SigningKeysTable = {
  kid: string;
  algorithm: 'EdDSA';
  private_pem: string;
  public_jwk: ColumnType<Record<string, unknown>, string, string>;
  created_at: Timestamp;
  retired_at: Timestamp | null;
};

/** The tables the identity module owns (and the platform signing keys it manages). */
export type IdentityTables = {
  'identity.tenants': TenantsTable;
  'identity.users': UsersTable;
  'identity.addresses': AddressesTable;
  'identity.refresh_tokens': RefreshTokensTable;
  'identity.api_keys': ApiKeysTable;
  'platform.signing_keys': SigningKeysTable;
};
