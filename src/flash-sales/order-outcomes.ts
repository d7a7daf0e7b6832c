import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Order } from '../orders/index.ts';
import { STATUS_EVENT_TYPES } from '../orders/index.ts';
import { handleFound, type Subscriber } from '../platform/events/index.ts';
import { type Admission, findAdmission, releaseAdmissions } from './admission-store.ts';
import { getCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { type FlashSalesTrx, RELEASE_REASONS, type ReleaseReason } from './tables.ts';
import { returnSoldUnits, returnUnits } from './units-back.ts';

/** Why an admission whose order was cancelled or failed is released: a failure's own reason when it is one. */
export function releaseReasonOf(status: 'cancelled' | 'failed', failure: string | undefined): ReleaseReason {
  if (status === 'cancelled') return 'cancelled';
  return failure && (RELEASE_REASONS as readonly string[]).includes(failure)
    ? (failure as ReleaseReason)
    : 'payment_error';
}

/**
 * What became of a sale's orders, from `order-events` (an internal target: exactly once through the
 * inbox): completed → the admission is paid (the campaign's `sold` rises); failed or cancelled →
 * it is released (the campaign's `admitted` falls, `released` rises) and, while the campaign is not
 * settled, its units go back to the gate for the next buyer (the saga's compensation, or the
 * window's sweep, has put them back into the pool already). Other orders are ignored.
 */
export function orderOutcomes(deps: FlashSalesDeps, logger: Logger): Subscriber {
  // With its key: a retry of this handler (or a rebuild that already counted it) gives nothing twice.
  const giveBack = (admission: Admission) =>
    deps.gate
      .giveBack(admission.campaignId, admission.customerId, admission.quantity, admission.idempotencyKey)
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
      const order = event.data as Order;
      const admission = await findAdmission(trx, event.subject, true);
      if (!admission) return;
      if (event.type === STATUS_EVENT_TYPES.completed) {
        const paid = await trx
          .updateTable('flash_sales.admissions')
          .set({ status: 'paid', updated_at: new Date() })
          .where('order_id', '=', admission.orderId)
          .where('status', 'in', ['admitted', 'paying'])
          .returning('quantity')
          .executeTakeFirst();
        if (paid) {
          await trx
            .updateTable('flash_sales.campaigns')
            .set((eb) => ({ sold: eb('sold', '+', paid.quantity), updated_at: new Date() }))
            .where('id', '=', admission.campaignId)
            .execute();
        }
        return;
      }
      const campaign = await getCampaign(trx, admission.campaignId, true);
      if (admission.status === 'paid') {
        // A completed order cancelled later (refunded): its units come back on hand and, while the
        // sale runs, into its pool (as any cancelled order's), so the counters below stay the pool's.
        const open = !campaign.settledAt && !campaign.cancelledAt;
        const pooled = await returnSoldUnits(
          deps,
          trx,
          campaign.tenantId,
          admission.orderId,
          campaign,
          admission.quantity,
          open,
        );
        await trx
          .updateTable('flash_sales.admissions')
          .set({ status: 'released', release_reason: 'cancelled', updated_at: new Date() })
          .where('order_id', '=', admission.orderId)
          .execute();
        await trx
          .updateTable('flash_sales.campaigns')
          .set((eb) => ({
            sold: eb('sold', '-', admission.quantity),
            admitted: eb('admitted', '-', admission.quantity),
            released: eb('released', '+', admission.quantity),
            // Units are back: the next sell-out is announced again.
            ...(pooled ? { announced: sql<string>`announced - 'soldOut'` } : {}),
            updated_at: new Date(),
          }))
          .where('id', '=', campaign.id)
          .execute();
        if (pooled) await giveBack(admission);
        return;
      }
      const reason = releaseReasonOf(
        event.type === STATUS_EVENT_TYPES.cancelled ? 'cancelled' : 'failed',
        order?.failure?.reason,
      );
      // A saga's compensation put them back already; an order cancelled before its payment did not.
      await returnUnits(deps, trx, campaign.tenantId, admission.orderId, campaign.id);
      const released = await releaseAdmissions(trx, campaign.id, [admission.orderId], reason);
      if (released.length === 0 || campaign.settledAt || campaign.cancelledAt) return;
      await giveBack(admission);
    },
  };
  return subscriber;
}
