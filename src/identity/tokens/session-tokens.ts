import type { Kysely } from 'kysely';
import type { AppContext } from '../../platform/context.ts';
import type { Role } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';
import { signAccessToken } from './access-tokens.ts';
import { loadSigningKeys } from './signing-keys.ts';

/**
 * Signs access tokens for sessions that already exist (a refresh family per session), with the
 * server's signing key, without a login: how a benchmark or a test signs in thousands of
 * customers, where an argon2 login each would take longer than the sale it measures. The tokens
 * are checked like any other (a session must still stand).
 */
export async function signSessionTokens(
  ctx: AppContext,
  db: Kysely<IdentityTables>,
  tenant: { id: string; slug: string },
  sessions: { userId: string; role: Role; sessionId: string }[],
): Promise<string[]> {
  const keys = await loadSigningKeys(ctx, db);
  return Promise.all(
    sessions.map((s) =>
      signAccessToken(keys, ctx.config.jwt, {
        tenantId: tenant.id,
        tenantSlug: tenant.slug,
        userId: s.userId,
        role: s.role,
        sessionId: s.sessionId,
      }),
    ),
  );
}
