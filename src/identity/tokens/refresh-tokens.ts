import { type Kysely, sql, type Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import type { Role } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';

type Db = Kysely<IdentityTables> | Transaction<IdentityTables>;

export const REFRESH_TOKEN_PREFIX = 'rt_';

export type StoredRefreshToken = {
  id: string;
  tenantId: string;
  userId: string;
  familyId: string;
  expiresAt: Date;
};

/** Stores a refresh token (by hash) in a family; run in the tenant's transaction. */
export async function insertRefreshToken(
  trx: Db,
  token: { tenantId: string; userId: string; familyId: string; hash: string; ttlSeconds: number },
): Promise<void> {
  await trx
    .insertInto('identity.refresh_tokens')
    .values({
      id: uuidv7(),
      tenant_id: token.tenantId,
      user_id: token.userId,
      family_id: token.familyId,
      token_hash: token.hash,
      expires_at: new Date(Date.now() + token.ttlSeconds * 1000),
    })
    .execute();
}

/** The refresh token with that hash, whatever its state; run as the system (the tenant is not known yet). */
export async function findRefreshTokenByHash(trx: Db, hash: string): Promise<StoredRefreshToken | undefined> {
  const row = await trx
    .selectFrom('identity.refresh_tokens')
    .select(['id', 'tenant_id', 'user_id', 'family_id', 'expires_at'])
    .where('token_hash', '=', hash)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: row.id,
    tenantId: row.tenant_id,
    userId: row.user_id,
    familyId: row.family_id,
    expiresAt: new Date(row.expires_at),
  };
}

/**
 * Marks the token rotated if, and only if, it is still live. The conditional UPDATE is the
 * arbiter between concurrent refreshes: exactly one of them gets true.
 */
export async function markRotated(trx: Db, id: string): Promise<boolean> {
  const row = await trx
    .updateTable('identity.refresh_tokens')
    .set({ rotated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/** Revokes every live token of the family (a session); idempotent. */
export async function revokeFamily(trx: Db, familyId: string): Promise<void> {
  await trx
    .updateTable('identity.refresh_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('family_id', '=', familyId)
    .where('revoked_at', 'is', null)
    .execute();
}

/** True while the session is neither revoked (logout, reuse) nor owned by a disabled user. */
export async function isSessionActive(trx: Db, familyId: string, userId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('identity.refresh_tokens as r')
    .innerJoin('identity.users as u', 'u.id', 'r.user_id')
    .select((eb) => [eb.fn.countAll<number>().as('total'), eb.fn.count<number>('r.revoked_at').as('revoked')])
    .where('r.family_id', '=', familyId)
    .where('r.user_id', '=', userId)
    .where('u.status', '=', 'active')
    .executeTakeFirstOrThrow();
  return Number(row.total) > 0 && Number(row.revoked) === 0;
}

/** The user and tenant a refreshed session would sign in as; undefined when either is gone. */
export async function findSessionOwner(
  trx: Db,
  userId: string,
): Promise<
  | { id: string; role: Role; status: string; tenantId: string; tenantSlug: string; tenantStatus: string }
  | undefined
> {
  return trx
    .selectFrom('identity.users as u')
    .innerJoin('identity.tenants as t', 't.id', 'u.tenant_id')
    .select([
      'u.id',
      'u.role',
      'u.status',
      'u.tenant_id as tenantId',
      't.slug as tenantSlug',
      't.status as tenantStatus',
    ])
    .where('u.id', '=', userId)
    .executeTakeFirst();
}
