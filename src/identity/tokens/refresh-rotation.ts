import { createHmac } from 'node:crypto';
import type { Kysely } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import type { Role } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';
import { sha256Hex } from './opaque-tokens.ts';
import {
  familyHolds,
  findSessionOwner,
  insertRefreshToken,
  markRotated,
  REFRESH_TOKEN_PREFIX,
  revokeFamily,
  type StoredRefreshToken,
  withinReuseGrace,
} from './refresh-tokens.ts';

/** The HKDF info of the key refresh tokens' successors are derived with (deriveServerKey). */
export const REFRESH_SUCCESSOR_KEY_INFO = 'mercato/refresh-successor/v1';

export type Rotation =
  | { ok: true; user: { id: string; role: Role }; tenant: { id: string; slug: string }; refreshToken: string }
  | {
      ok: false;
      code: 'REFRESH_TOKEN_REUSED' | 'INVALID_TOKEN' | 'TENANT_SUSPENDED';
      detail: string;
      /** Whether the session was revoked (a suspended tenant's is kept, untouched). */
      revoked: boolean;
    };

/**
 * The one token a refresh token rotates into: HMAC-SHA256 of it under the server's key. Every
 * replay of a token answers the same successor (never a second live token of the session), and
 * only the server can derive it: a stolen token does not reveal the tokens after it.
 */
export function successorOf(key: Buffer, refreshToken: string): string {
  return REFRESH_TOKEN_PREFIX + createHmac('sha256', key).update(refreshToken).digest('base64url');
}

const refused = (code: 'REFRESH_TOKEN_REUSED' | 'INVALID_TOKEN', detail: string): Rotation => ({
  ok: false,
  code,
  detail,
  revoked: true,
});

/**
 * Trades a refresh token for its successor, in the tenant's transaction. The first trade marks
 * it rotated and stores the successor; a replay less than graceSeconds later (a client's
 * parallel refreshes) answers that same successor and stores nothing; any later replay, or one
 * of a revoked session, revokes the family (REFRESH_TOKEN_REUSED). Failures are returned, not
 * thrown, so that the revocations commit.
 */
export function rotateRefreshToken(
  db: Kysely<IdentityTables>,
  stored: StoredRefreshToken,
  refreshToken: string,
  options: { successorKey: Buffer; graceSeconds: number; ttlSeconds: number },
): Promise<Rotation> {
  const successor = successorOf(options.successorKey, refreshToken);
  const successorHash = sha256Hex(successor);
  return withTenant(db, stored.tenantId, async (trx): Promise<Rotation> => {
    // A suspended tenant's sessions wait, unrotated and unrevoked, until it is active again:
    // read before anything is written, in the transaction that writes. A suspension that
    // commits after this read finds the refresh done before it (its new access token is then
    // refused like any other of the tenant's), never a session revoked because of it.
    const owner = await findSessionOwner(trx, stored.userId);
    if (owner?.tenantStatus === 'suspended') {
      return { ok: false, code: 'TENANT_SUSPENDED', detail: 'this tenant is suspended', revoked: false };
    }
    const first = await markRotated(trx, stored);
    if (!first && !(await withinReuseGrace(trx, stored, options.graceSeconds))) {
      await revokeFamily(trx, stored.familyId);
      return refused('REFRESH_TOKEN_REUSED', 'refresh token was already used; session revoked');
    }
    if (owner?.status !== 'active') {
      await revokeFamily(trx, stored.familyId);
      return refused('INVALID_TOKEN', 'the account of this session is no longer active');
    }
    if (first) {
      await insertRefreshToken(trx, {
        tenantId: stored.tenantId,
        userId: stored.userId,
        familyId: stored.familyId,
        hash: successorHash,
        ttlSeconds: options.ttlSeconds,
      });
    } else if (!(await familyHolds(trx, stored.familyId, successorHash))) {
      // The first trade stored another successor (a process deriving from another key): this
      // replay gets nothing rather than a second live token; the session itself goes on.
      return {
        ok: false,
        code: 'INVALID_TOKEN',
        detail: 'refresh token was already rotated',
        revoked: false,
      };
    }
    return {
      ok: true,
      user: owner,
      tenant: { id: owner.tenantId, slug: owner.tenantSlug },
      refreshToken: successor,
    };
  });
}
