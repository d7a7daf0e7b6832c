import { type Kysely, sql, type Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { type JsonColumn, jsonRows } from '../../platform/db/index.ts';
import type { Role } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';

type Db = Kysely<IdentityTables> | Transaction<IdentityTables>;

export const REFRESH_TOKEN_PREFIX = 'rt_';

/** A session as loadSessionRecords sends it (jsonRows). */
const SESSION_PAIR: JsonColumn[] = [
  ['user_id', 'uuid'],
  ['family_id', 'uuid'],
];

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

const familyRevoked = (familyId: string) =>
  sql<boolean>`exists (select 1 from identity.refresh_tokens f
    where f.family_id = ${familyId} and f.revoked_at is not null)`;

/**
 * Marks the token rotated if, and only if, it and its family are still live. The conditional
 * UPDATE is the arbiter between concurrent refreshes: exactly one of them gets true.
 */
export async function markRotated(trx: Db, token: { id: string; familyId: string }): Promise<boolean> {
  const row = await trx
    .updateTable('identity.refresh_tokens')
    .set({ rotated_at: sql<Date>`now()` })
    .where('id', '=', token.id)
    .where('rotated_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where(sql<boolean>`not ${familyRevoked(token.familyId)}`)
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Whether an already-rotated token may still be traded (concurrent tabs refreshing at once):
 * it was rotated less than graceSeconds ago by the database clock, and neither it nor its
 * family has been revoked since.
 */
export async function withinReuseGrace(
  trx: Db,
  token: { id: string; familyId: string },
  graceSeconds: number,
): Promise<boolean> {
  if (graceSeconds <= 0) return false;
  const row = await trx
    .selectFrom('identity.refresh_tokens')
    .select(sql<boolean>`rotated_at > now() - make_interval(secs => ${graceSeconds})`.as('fresh'))
    .where('id', '=', token.id)
    .where('rotated_at', 'is not', null)
    .where('revoked_at', 'is', null)
    .where(sql<boolean>`not ${familyRevoked(token.familyId)}`)
    .executeTakeFirst();
  return row?.fresh === true;
}

/** Whether the family (a session) holds an unrevoked token with that hash. */
export async function familyHolds(trx: Db, familyId: string, hash: string): Promise<boolean> {
  const row = await trx
    .selectFrom('identity.refresh_tokens')
    .select('id')
    .where('family_id', '=', familyId)
    .where('token_hash', '=', hash)
    .where('revoked_at', 'is', null)
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

/**
 * Revokes every session of the user, except the one named (the session changing its own
 * password stays signed in); run in the tenant's transaction. On commit, migration 0012's
 * trigger announces it and every process stops accepting the sessions' access tokens.
 * Returns the number of refresh tokens revoked.
 */
export async function revokeUserSessions(
  trx: Db,
  tenantId: string,
  userId: string,
  options: { except?: string } = {},
): Promise<number> {
  let query = trx
    .updateTable('identity.refresh_tokens')
    .set({ revoked_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null);
  if (options.except !== undefined) query = query.where('family_id', '!=', options.except);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/**
 * Each user's status and role and whether the session is live (known and never revoked), for
 * many sessions of one tenant in ONE query (concurrent checks read together, session-loader.ts):
 * keyed `<userId>:<familyId>`; users not in the tenant are absent.
 */
export async function loadSessionRecords(
  trx: Db,
  tenantId: string,
  sessions: { userId: string; familyId: string }[],
): Promise<Map<string, { status: string; role: Role; sessionLive: boolean }>> {
  const pairs = sessions.map((s) => [s.userId, s.familyId]);
  const { rows } = await sql<{
    user_id: string;
    family_id: string;
    status: string;
    role: Role;
    live: boolean;
  }>`
    select v.user_id, v.family_id, u.status, u.role,
      exists (select 1 from identity.refresh_tokens r where r.family_id = v.family_id and r.user_id = u.id)
        and not exists (select 1 from identity.refresh_tokens f
          where f.family_id = v.family_id and f.revoked_at is not null) as live
    from ${jsonRows(SESSION_PAIR, pairs)} as v
    join identity.users u on u.id = v.user_id and u.tenant_id = ${tenantId}`.execute(trx);
  return new Map(
    rows.map((r) => [
      `${r.user_id}:${r.family_id}`,
      { status: r.status, role: r.role, sessionLive: r.live === true },
    ]),
  );
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
