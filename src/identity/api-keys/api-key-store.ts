import { type ExpressionBuilder, type Kysely, sql, type Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { isoTime as iso, lockNamed } from '../../platform/db/index.ts';
import { AppError, isStorableTimestamp } from '../../platform/http/index.ts';
import { checkFields } from '../account-fields.ts';
import type { IdentityTables } from '../tables.ts';
import { randomToken, sha256Hex } from '../tokens/index.ts';

type Db = Kysely<IdentityTables> | Transaction<IdentityTables>;

export const API_KEY_PREFIX = 'mk_';
/** A tenant's live keys are capped, so a tenant admin cannot grow the table (and the lookups) without bound. */
export const MAX_LIVE_API_KEYS_PER_TENANT = 100;
/** How many leading characters of a key are kept in clear, so people can tell keys apart. */
const SHOWN_PREFIX_LENGTH = 10;
/** How far ahead a key's expiry may be set, in years (a longer-lived key is made without one). */
export const MAX_API_KEY_LIFETIME_YEARS = 10;

/** An API key as listings show it: never the secret nor its hash. */
export type ApiKey = {
  id: string;
  name: string;
  prefix: string;
  permissions: string[];
  namespaces: string[];
  createdAt: string;
  lastUsedAt: string | null;
  /** When the key stops working; null never (it works until revoked). */
  expiresAt: string | null;
};

/** What authentication needs to know about a key found by its hash. */
export type ApiKeyGrant = {
  id: string;
  tenantId: string;
  tenantSlug: string;
  permissions: string[];
  namespaces: string[];
  revoked: boolean;
  /** After it the key is refused as a revoked one is; null never expires. */
  expiresAt: Date | null;
  tenantActive: boolean;
};

const COLUMNS = [
  'id',
  'name',
  'prefix',
  'permissions',
  'namespaces',
  'created_at',
  'last_used_at',
  'expires_at',
] as const;

/** Neither revoked nor expired, by the database clock. */
const usable = (eb: ExpressionBuilder<IdentityTables, 'identity.api_keys'>) =>
  eb.and([
    eb('revoked_at', 'is', null),
    eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]),
  ]);

/**
 * Why an expiry is refused, or undefined when it is fine: an RFC 3339 date-time (checked by the
 * route's schema, and here for other callers) in the future, at most MAX_API_KEY_LIFETIME_YEARS
 * ahead; null or undefined is no expiry.
 */
export function expiryProblem(value: unknown, now = Date.now()): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string' || !isStorableTimestamp(value)) return 'must be an RFC 3339 date-time';
  const at = Date.parse(value);
  if (at <= now) return 'must be in the future';
  const latest = new Date(now);
  latest.setUTCFullYear(latest.getUTCFullYear() + MAX_API_KEY_LIFETIME_YEARS);
  if (at > latest.getTime()) return `must be at most ${MAX_API_KEY_LIFETIME_YEARS} years ahead`;
  return undefined;
}

function toApiKey(row: {
  id: string;
  name: string;
  prefix: string;
  permissions: string[];
  namespaces: string[];
  created_at: Date | string;
  last_used_at: Date | string | null;
  expires_at: Date | string | null;
}): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    permissions: row.permissions,
    namespaces: row.namespaces,
    createdAt: iso(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : iso(row.last_used_at),
    expiresAt: row.expires_at === null ? null : iso(row.expires_at),
  };
}

/**
 * Creates a key in the tenant's transaction; the clear secret is returned this once only. The
 * creator must still be an active admin, checked under a lock of their row: a request under way
 * when its admin was demoted, disabled or erased makes no key (INVALID_TOKEN), and an erasure
 * that comes after waits for this one and then revokes the key with the creator's others. A
 * tenant holding MAX_LIVE_API_KEYS_PER_TENANT live (unrevoked, unexpired) keys gets CONFLICT.
 * `expiresAt` (RFC 3339, future, at most MAX_API_KEY_LIFETIME_YEARS ahead; omitted or null: never)
 * is VALIDATION_FAILED naming `/expiresAt` otherwise.
 */
export async function createApiKey(
  trx: Db,
  input: {
    tenantId: string;
    name: string;
    permissions: string[];
    namespaces: string[];
    createdBy: string;
    expiresAt?: string | null | undefined;
  },
): Promise<ApiKey & { key: string }> {
  checkFields([['/expiresAt', expiryProblem, input.expiresAt]]);
  const creator = await trx
    .selectFrom('identity.users')
    .select('id')
    .where('tenant_id', '=', input.tenantId)
    .where('id', '=', input.createdBy)
    .where('status', '=', 'active')
    .where('role', '=', 'admin')
    .forShare()
    .executeTakeFirst();
  if (!creator) throw new AppError('INVALID_TOKEN', 'your account is no longer an active admin');
  // Serialises the tenant's creations, so two at once cannot both take the last place.
  await lockNamed(trx, `identity.api_keys:${input.tenantId}`);
  const live = await trx
    .selectFrom('identity.api_keys')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('tenant_id', '=', input.tenantId)
    .where(usable)
    .executeTakeFirstOrThrow();
  if (Number(live.n) >= MAX_LIVE_API_KEYS_PER_TENANT) {
    throw new AppError(
      'CONFLICT',
      `a tenant holds at most ${MAX_LIVE_API_KEYS_PER_TENANT} live API keys; revoke one first`,
    );
  }
  const key = randomToken(API_KEY_PREFIX);
  const row = await trx
    .insertInto('identity.api_keys')
    .values({
      id: uuidv7(),
      tenant_id: input.tenantId,
      name: input.name,
      prefix: key.slice(0, SHOWN_PREFIX_LENGTH),
      key_hash: sha256Hex(key),
      permissions: input.permissions,
      namespaces: input.namespaces,
      created_by: input.createdBy,
      expires_at: input.expiresAt ?? null,
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { ...toApiKey(row), key };
}

/**
 * The tenant's unrevoked keys, expired ones too (their expiresAt says so: an admin sees why an
 * integration stopped), newest first, keyset-paginated by id (UUIDv7 is time-ordered).
 */
export async function listApiKeys(
  trx: Db,
  tenantId: string,
  limit: number,
  before?: string,
): Promise<ApiKey[]> {
  let query = trx
    .selectFrom('identity.api_keys')
    .select(COLUMNS)
    .where('tenant_id', '=', tenantId)
    .where('revoked_at', 'is', null);
  if (before) query = query.where('id', '<', before);
  return (await query.orderBy('id', 'desc').limit(limit).execute()).map(toApiKey);
}

/**
 * Revokes the tenant's key and returns its stored (lowercase) id; undefined when the tenant has
 * no such key. Revoking twice is fine.
 */
export async function revokeApiKey(trx: Db, tenantId: string, id: string): Promise<string | undefined> {
  const row = await trx
    .updateTable('identity.api_keys')
    .set({ revoked_at: sql<Date>`coalesce(revoked_at, now())` })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returning('id')
    .executeTakeFirst();
  return row?.id;
}

/** The key with that hash and its tenant, revoked or not; run as the system (no tenant yet). */
export async function findApiKeyByHash(trx: Db, hash: string): Promise<ApiKeyGrant | undefined> {
  const row = await trx
    .selectFrom('identity.api_keys as k')
    .innerJoin('identity.tenants as t', 't.id', 'k.tenant_id')
    .select([
      'k.id',
      'k.tenant_id',
      't.slug',
      't.status',
      'k.permissions',
      'k.namespaces',
      'k.revoked_at',
      'k.expires_at',
    ])
    .where('k.key_hash', '=', hash)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: row.id,
    tenantId: row.tenant_id,
    tenantSlug: row.slug,
    permissions: row.permissions,
    namespaces: row.namespaces,
    revoked: row.revoked_at !== null,
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    tenantActive: row.status === 'active',
  };
}

/** Records use of the key, at most once a minute whatever the number of processes. */
export async function touchApiKey(trx: Db, tenantId: string, id: string): Promise<void> {
  await trx
    .updateTable('identity.api_keys')
    .set({ last_used_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where((eb) =>
      eb.or([
        eb('last_used_at', 'is', null),
        eb('last_used_at', '<', sql<Date>`now() - interval '1 minute'`),
      ]),
    )
    .execute();
}
