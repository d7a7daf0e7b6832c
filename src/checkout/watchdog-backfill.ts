import type { Logger } from 'pino';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { CheckoutDeps } from './deps.ts';
import { updateSaga } from './saga-store.ts';
import type { CheckoutTrx } from './tables.ts';
import { newWatchdog } from './watchdog.ts';

/**
 * Gives a watchdog to each saga migration 0060 listed (compensating at that release: a cancel of
 * a completed order wrote none before it, so nothing resumed such a saga after a crash or a
 * compensation that failed a whole run). Per tenant, one transaction takes its rows (delete ...
 * returning: each saga once, whichever process takes it) and writes their watchdogs, so a row is
 * gone only with its watchdog written. Called as the checkout starts; a failure is logged, the
 * rows staying for the next start.
 */
export async function backfillWatchdogs(
  deps: CheckoutDeps,
  delayMs: number,
  logger: Logger,
): Promise<number> {
  try {
    const tenants = await withSystem(deps.db, (trx) =>
      trx.selectFrom('checkout.watchdog_backfill').select('tenant_id').distinct().execute(),
    );
    let written = 0;
    for (const { tenant_id: tenantId } of tenants) {
      written += await withTenant(deps.db, tenantId, async (anyTrx) => {
        const trx = anyTrx as CheckoutTrx;
        const rows = await trx.deleteFrom('checkout.watchdog_backfill').returningAll().execute();
        for (const row of rows) {
          const saga = { id: row.saga_id, orderId: row.order_id };
          await updateSaga(trx, saga.id, await newWatchdog(deps.events, trx, tenantId, saga, delayMs));
        }
        return rows.length;
      });
    }
    if (written > 0)
      logger.info({ sagas: written }, 'checkout: watchdogs written for sagas left without one');
    return written;
  } catch (error) {
    logger.error({ err: error }, 'checkout: could not write the watchdogs of sagas left without one');
    return 0;
  }
}
