import { type Kysely, sql } from 'kysely';
import { withSystem } from '../../platform/db/index.ts';
import type { IdentityDeps } from '../module.ts';
import type { IdentityTables } from '../tables.ts';

/**
 * Deletes refresh tokens that can no longer matter: expired ones, and those revoked or rotated
 * more than a day ago (a rotated token kept for a day still trips reuse detection). Returns the count.
 *
 * A session is dead while any token of its family is revoked, and a family can hold a live token
 * beside a revoked one: a refresh that commits while a logout's (or a password change's) UPDATE
 * waits for its row lock inserts a successor that UPDATE never sees. Deleting the revoked row
 * would bring that session back, so such tokens are revoked first, and go a day later.
 */
export async function purgeRefreshTokens(db: Kysely<IdentityTables>): Promise<number> {
  const result = await withSystem(db, async (trx) => {
    await trx
      .updateTable('identity.refresh_tokens as r')
      .set({ revoked_at: sql<Date>`now()` })
      .where('r.revoked_at', 'is', null)
      .where('r.expires_at', '>=', sql<Date>`now()`)
      .where(
        sql<boolean>`exists (select 1 from identity.refresh_tokens f
          where f.family_id = r.family_id and f.revoked_at is not null)`,
      )
      .execute();
    return trx
      .deleteFrom('identity.refresh_tokens')
      .where((eb) =>
        eb.or([
          eb('expires_at', '<', sql<Date>`now()`),
          eb('revoked_at', '<', sql<Date>`now() - interval '1 day'`),
          eb('rotated_at', '<', sql<Date>`now() - interval '1 day'`),
        ]),
      )
      .executeTakeFirst();
  });
  return Number(result.numDeletedRows);
}

/** Runs purgeRefreshTokens every config.purgeIntervalSeconds (timer unref'd); returns the stop function. */
export function startRefreshTokenPurge(deps: IdentityDeps): () => void {
  const { ctx, db } = deps;
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const purged = await purgeRefreshTokens(db);
      if (purged > 0) ctx.logger.info({ purged }, 'purged refresh tokens');
    } catch (error) {
      ctx.logger.warn({ err: error }, 'refresh token purge failed');
    } finally {
      running = false;
    }
  }, ctx.config.purgeIntervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
