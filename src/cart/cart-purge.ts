import { sql } from 'kysely';
import { withSystem } from '../platform/db/index.ts';
import type { AppContext } from '../platform/index.ts';
import type { CartDb } from './tables.ts';

const BATCH = 1000;

/**
 * Deletes carts unused (no change, no read) for ttlSeconds, lines with them, in batches; returns
 * how many. A cart a request holds locked is skipped (it is being used, and the purge never waits
 * behind a shopper); one used since it was chosen is kept, as the delete checks its age again.
 */
export async function purgeIdleCarts(db: CartDb, ttlSeconds: number): Promise<number> {
  let purged = 0;
  const idle = sql<Date>`now() - make_interval(secs => ${ttlSeconds})`;
  for (;;) {
    const result = await withSystem(db, (trx) =>
      trx
        .deleteFrom('cart.carts')
        .where('active_at', '<', idle)
        .where(
          'id',
          'in',
          trx
            .selectFrom('cart.carts')
            .select('id')
            .where('active_at', '<', idle)
            .limit(BATCH)
            .forUpdate()
            .skipLocked(),
        )
        .executeTakeFirst(),
    );
    const count = Number(result.numDeletedRows);
    purged += count;
    if (count < BATCH) return purged;
  }
}

/** Runs purgeIdleCarts every config.purgeIntervalSeconds (timer unref'd); returns the stop function. */
export function startCartPurge(ctx: AppContext, db: CartDb): () => void {
  let running = false;
  const timer = setInterval(async () => {
    if (running) return;
    running = true;
    try {
      const purged = await purgeIdleCarts(db, ctx.config.cartTtlSeconds);
      if (purged > 0) ctx.logger.info({ purged }, 'purged idle carts');
    } catch (error) {
      ctx.logger.warn({ err: error }, 'idle cart purge failed');
    } finally {
      running = false;
    }
  }, ctx.config.purgeIntervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
