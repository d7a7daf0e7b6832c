import type { Logger } from 'pino';
import type { Order } from '../orders/index.ts';
import { STATUS_EVENT_TYPES } from '../orders/index.ts';
import { handleFound, type Subscriber } from '../platform/events/index.ts';
import { applyOrderOutcome, type OrderOutcome } from './admission-outcome.ts';
import { type Admission, findAdmission } from './admission-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesTrx } from './tables.ts';

/**
 * What became of a sale's orders, from `order-events` (an internal target: exactly once through the
 * inbox): completed → the admission is paid (the campaign's `sold` rises); failed or cancelled →
 * it is released (the campaign's `admitted` falls, `released` rises) and, while the campaign is not
 * settled, its units go back to the gate for the next buyer (the saga's compensation, or the
 * window's sweep, has put them back into the pool already). Other orders are ignored. The moves
 * are admission-outcome.ts's, which the lifecycle's sweep of admissions whose event never came
 * (dead-lettered: paying-sweep.ts) applies too; their status guards make the second one a no-op.
 */
export function orderOutcomes(deps: FlashSalesDeps, logger: Logger): Subscriber {
  // With its key, which the gate keeps (holding nothing: a retry under it finds this admission): a
  // retry of this handler (or a rebuild that already counted it) gives nothing twice.
  const giveBack = (admission: Admission) =>
    deps.gate
      .release(admission.campaignId, admission.customerId, admission.quantity, admission.idempotencyKey)
      .catch((error) =>
        logger.warn(
          { err: error, campaignId: admission.campaignId },
          'flash-sales: units not given back to the gate; reconciliation will',
        ),
      );
  const subscriber: Subscriber = {
    name: 'flash-sales.order-outcomes',
    topic: 'order-events',
    types: [STATUS_EVENT_TYPES.completed, STATUS_EVENT_TYPES.failed, STATUS_EVENT_TYPES.cancelled],
    // A saga's order whose units came from available stock, not a sale's pool, is no admission.
    skips: (event) => event.hints?.['bySaga'] === true && event.hints['stockPool'] === null,
    // Most orders are no sale's: one read tells which of a batch are, and only those are handled.
    handleMany: (anyTrx, batch) =>
      handleFound(
        batch,
        (event) => event.subject,
        async (ids) => {
          const rows = await (anyTrx as FlashSalesTrx)
            .selectFrom('flash_sales.admissions')
            .select('order_id')
            .where('order_id', 'in', ids)
            .execute();
          return new Set(rows.map((r) => r.order_id));
        },
        (event) => subscriber.handle(anyTrx, event),
      ),
    async handle(anyTrx, event) {
      const trx = anyTrx as FlashSalesTrx;
      const admission = await findAdmission(trx, event.subject, true);
      if (!admission) return;
      const outcome: OrderOutcome =
        event.type === STATUS_EVENT_TYPES.completed
          ? { status: 'completed' }
          : {
              status: event.type === STATUS_EVENT_TYPES.cancelled ? 'cancelled' : 'failed',
              failure: (event.data as Order | undefined)?.failure?.reason,
            };
      const back = await applyOrderOutcome(deps, trx, admission, outcome);
      if (back) await giveBack(back);
    },
  };
  return subscriber;
}
