import { type Kysely, sql, type Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { isoTime as iso, lockNamed } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';
import { randomToken, sha256Hex } from '../tokens/index.ts';

type Db = Kysely<IdentityTables> | Transaction<IdentityTables>;

export const API_KEY_PREFIX = 'mk_';
/** A tenant's live keys are capped, so a tenant admin cannot grow the table (and the lookups) without bound. */
export const MAX_LIVE_API_KEYS_PER_TENANT = 100;
/** How many leading characters of a key are kept in clear, so people can tell keys apart. */
const SHOWN_PREFIX_LENGTH = 10;

/** An API key as listings show it: never the secret nor its hash. */
export type ApiKey = {
  id: string;
  name: string;
  prefix: string;
  permissions: string[];
  namespaces: string[];
  createdAt: string;
  lastUsedAt: string | null;
};

/** What authentication needs to know about a key found by its hash. */
export type ApiKeyGrant = {
  id: string;
  tenantId: string;
  tenantSlug: string;
  permissions: string[];
  namespaces: string[];
  revoked: boolean;
  tenantActive: boolean;
};

const COLUMNS = ['id', 'name', 'prefix', 'permissions', 'namespaces', 'created_at', 'last_used_at'] as const;

function toApiKey(row: {
  id: string;
  name: string;
  prefix: string;
  permissions: string[];
  namespaces: string[];
  created_at: Date | string;
  last_used_at: Date | string | null;
}): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    permissions: row.permissions,
    namespaces: row.namespaces,
    createdAt: iso(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : iso(row.last_used_at),
  };
}

/**
 * Creates a key in the tenant's transaction; the clear secret is returned this once only. The
 * creator must still be an active admin, checked under a lock of their row: a request under way
 * when its admin was demoted, disabled or erased makes no key (INVALID_TOKEN), and an erasure
 * that comes after waits for this one and then revokes the key with the creator's others. A
 * tenant holding MAX_LIVE_API_KEYS_PER_TENANT live keys gets CONFLICT.
 */
export async function createApiKey(
  trx: Db,
  input: { tenantId: string; name: string; permissions: string[]; namespaces: string[]; createdBy: string },
): Promise<ApiKey & { key: string }> {
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
    .where('revoked_at', 'is', null)
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
    })
    .returning(COLUMNS)
    .executeTakeFirstOrThrow();
  return { ...toApiKey(row), key };
}

/** The tenant's live keys, newest first, keyset-paginated by id (UUIDv7 is time-ordered). */
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
    .select(['k.id', 'k.tenant_id', 't.slug', 't.status', 'k.permissions', 'k.namespaces', 'k.revoked_at'])
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
