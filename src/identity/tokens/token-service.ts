import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import { uuidv7 } from 'uuidv7';
import type { AppContext } from '../../platform/context.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { AppError, type Principal, type Role } from '../../platform/http/index.ts';
import { deriveServerKey } from '../../platform/index.ts';
import type { IdentityTables } from '../tables.ts';
import { createAccessTokenVerifier, signAccessToken, type VerifiedAccessToken } from './access-tokens.ts';
import { randomToken, sha256Hex } from './opaque-tokens.ts';
import { REFRESH_SUCCESSOR_KEY_INFO, rotateRefreshToken } from './refresh-rotation.ts';
import {
  findRefreshTokenByHash,
  insertRefreshToken,
  REFRESH_TOKEN_PREFIX,
  revokeFamily,
} from './refresh-tokens.ts';
import { createSessionCache, type SessionCache } from './session-cache.ts';
import { createSessionLoader } from './session-loader.ts';
import { loadSigningKeys } from './signing-keys.ts';

export type TokenPair = { accessToken: string; refreshToken: string; tokenType: 'Bearer'; expiresIn: number };

/** RFC 7662-style answer about an access token. */
export type Introspection =
  | { active: false }
  | {
      active: true;
      sub: string;
      tenantId: string;
      tenant: string;
      role: Role;
      exp: number;
      iat: number;
      sessionId: string;
    };

export type TokenService = {
  /**
   * Verifies an access token and that its session is live, its user active and still of the
   * role it names; throws AppError INVALID_TOKEN. The session check is answered by a
   * per-process cache (no database access on a hit) that change notifications invalidate.
   */
  authenticate(token: string): Promise<Principal>;
  /** The session cache behind authenticate(); the identity module wires its invalidation. */
  sessions: SessionCache;
  /** The public keys access tokens are verified with. */
  jwks(): { keys: JWK[] };
  /**
   * Starts a session (a new refresh family unless options.familyId is given) and returns its
   * first pair. With options.passwordHash (the hash a sign-in checked the password against), the
   * session starts only if the user is still active with that very hash, checked under a lock of
   * the user's row: a password change, a disabling or an erasure that commits while the password
   * was being checked (argon2 takes a while) is INVALID_CREDENTIALS, not a session that outlives it.
   */
  issue(
    user: { id: string; role: Role },
    tenant: { id: string; slug: string },
    options?: { familyId?: string; passwordHash?: string },
  ): Promise<TokenPair>;
  /**
   * Rotates a refresh token into its one successor (refresh-rotation.ts). One rotated less than
   * config.refreshReuseGraceSeconds ago gets a new access token and that same successor
   * (concurrent tabs); any other reused or revoked one revokes its family (REFRESH_TOKEN_REUSED).
   */
  refresh(refreshToken: string): Promise<TokenPair>;
  /** Revokes the session the refresh token belongs to; unknown tokens are ignored. */
  revoke(refreshToken: string): Promise<void>;
  /** Whether an access token is valid and its session still live. */
  introspect(token: string): Promise<Introspection>;
};

/** Builds the token service; loads (or creates, on first start) the signing keys. */
export async function createTokenService(ctx: AppContext, db: Kysely<IdentityTables>): Promise<TokenService> {
  const keys = await loadSigningKeys(ctx, db);
  // After loadSigningKeys: without MERCATO_SECRETS_KEY it derives from the signing key it made.
  const successorKey = await deriveServerKey(ctx, db, REFRESH_SUCCESSOR_KEY_INFO);
  const { jwt, refreshTtlSeconds, refreshReuseGraceSeconds } = ctx.config;
  const jwks = { keys: keys.published };
  // Sized for a stampede of signed-in shoppers (a flash sale: each sends attempts for as long as
  // it lasts): 100,000 verified tokens (~300 bytes each) and 100,000 users' session states
  // (~200 bytes each). Fewer, and every attempt past them pays an Ed25519 check and a database read.
  const verify = createAccessTokenVerifier(keys, jwt, 100_000);
  const sessions = createSessionCache({ maxUsers: 100_000 });

  /** Why the token's session no longer stands, or undefined while it does. */
  const loader = createSessionLoader(db);
  const judge = (p: VerifiedAccessToken['principal']) =>
    sessions.check(p, () => loader.load(p.tenantId, p.userId, p.sessionId));

  async function pairFor(
    user: { id: string; role: Role },
    tenant: { id: string; slug: string },
    familyId: string,
    refreshToken: string,
  ): Promise<TokenPair> {
    const accessToken = await signAccessToken(keys, jwt, {
      tenantId: tenant.id,
      tenantSlug: tenant.slug,
      userId: user.id,
      role: user.role,
      sessionId: familyId,
    });
    return { accessToken, refreshToken, tokenType: 'Bearer', expiresIn: jwt.accessTtlSeconds };
  }

  const newRefresh = () => {
    const token = randomToken(REFRESH_TOKEN_PREFIX);
    return { token, hash: sha256Hex(token) };
  };

  return {
    async authenticate(token) {
      const { principal } = await verify(token);
      const refused = await judge(principal);
      if (refused) throw new AppError('INVALID_TOKEN', `access token no longer valid: ${refused}`);
      return principal;
    },

    sessions,

    jwks: () => jwks,

    async issue(user, tenant, options = {}) {
      const familyId = options.familyId ?? uuidv7();
      const { token, hash } = newRefresh();
      const started = await withTenant(db, tenant.id, async (trx) => {
        if (options.passwordHash !== undefined) {
          // FOR SHARE waits for a change of the user in flight and reads what it committed; a
          // change after it waits for this session's commit, and then revokes the session too.
          const current = await trx
            .selectFrom('identity.users')
            .select('id')
            .where('tenant_id', '=', tenant.id)
            .where('id', '=', user.id)
            .where('status', '=', 'active')
            .where('password_hash', '=', options.passwordHash)
            .forShare()
            .executeTakeFirst();
          if (!current) return false;
        }
        await insertRefreshToken(trx, {
          tenantId: tenant.id,
          userId: user.id,
          familyId,
          hash,
          ttlSeconds: refreshTtlSeconds,
        });
        return true;
      });
      if (!started) throw new AppError('INVALID_CREDENTIALS', 'email or password is wrong');
      return pairFor(user, tenant, familyId, token);
    },

    async refresh(refreshToken) {
      const stored = await withSystem(db, (trx) => findRefreshTokenByHash(trx, sha256Hex(refreshToken)));
      if (!stored) throw new AppError('INVALID_TOKEN', 'refresh token is not recognised');
      if (stored.expiresAt.getTime() <= Date.now())
        throw new AppError('INVALID_TOKEN', 'refresh token has expired');
      const rotation = await rotateRefreshToken(db, stored, refreshToken, {
        successorKey,
        graceSeconds: refreshReuseGraceSeconds,
        ttlSeconds: refreshTtlSeconds,
      });
      if (!rotation.ok) {
        // This process stops accepting the session's access tokens now; others on NOTIFY.
        if (rotation.revoked) sessions.invalidate(stored.userId);
        throw new AppError(rotation.code, rotation.detail);
      }
      return pairFor(rotation.user, rotation.tenant, stored.familyId, rotation.refreshToken);
    },

    async revoke(refreshToken) {
      const stored = await withSystem(db, (trx) => findRefreshTokenByHash(trx, sha256Hex(refreshToken)));
      if (!stored) return;
      await withTenant(db, stored.tenantId, (trx) => revokeFamily(trx, stored.familyId));
      sessions.invalidate(stored.userId);
    },

    async introspect(token) {
      let verified: VerifiedAccessToken;
      try {
        verified = await verify(token);
      } catch {
        return { active: false };
      }
      const { principal: p, issuedAt, expiresAt } = verified;
      if (await judge(p)) return { active: false };
      return {
        active: true,
        sub: p.userId,
        tenantId: p.tenantId,
        tenant: p.tenantSlug,
        role: p.role,
        exp: expiresAt,
        iat: issuedAt,
        sessionId: p.sessionId,
      };
    },
  };
}
