import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { sql } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { releaseForOrder, releaseReasonOf } from './admission-outcome.ts';
import type { Admission } from './admission-store.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesTrx, ReleaseReason } from './tables.ts';

// What ends an admission still waiting for its payment (status admitted): its payment window
// closing (the lifecycle's sweep, lifecycle.ts), or its sale's cancel. One implementation for
// both, so that a cancel interrupted (kill -9, a failed batch) is finished by the sweep: the
// cancel closes every waiting window at once, in its own transaction, and the sweep's pass takes
// whatever the cancel's batches did not.

/** Admissions one of a cancel's transactions ends (each order cancelled, its units back). */
export const CANCEL_BATCH = 50;

/**
 * In trx, the campaign's row then the admission's locked (in that order: a cancel's, the sweep's):
 * ends a waiting admission. Its order, still `created`, is cancelled when the sale was cancelled,
 * else failed with reason `timeout` (its window closed); an order cancelled or failed already (its
 * outcome not handled by the sale yet: its event on the way, or dead-lettered) is released as it
 * is. Either way its units go back (to the pool while the sale runs, else to stock) and the
 * admission is released (releaseForOrder). An order in any other state (being paid: unreachable
 * while admitted), or none outside a cancel, is left to its outcome. Answers whether the admission was released, and it when
 * its units go back to the gate too (the sale runs).
 */
export async function endWaiting(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  tenantId: string,
  campaign: Campaign,
  orderId: string,
  actor = `flash-sale:${campaign.id}`,
  meta?: EventMeta,
): Promise<{ released: boolean; back?: Admission }> {
  const cancelled = campaign.cancelledAt !== null;
  const order = await deps.orders.get(trx, tenantId, orderId, { lock: true });
  let reason: ReleaseReason = cancelled ? 'cancelled' : 'timeout';
  if (order?.status === 'created') {
    if (cancelled) {
      await deps.orders.transition(trx, tenantId, orderId, 'cancelled', {
        actor,
        reason: 'the flash sale was cancelled',
        meta,
      });
    } else {
      await deps.orders.transition(trx, tenantId, orderId, 'failed', {
        actor,
        failure: { reason: 'timeout', message: 'the payment window closed before the order was paid' },
      });
    }
  } else if (order?.status === 'cancelled' || order?.status === 'failed') {
    // Released as its outcome would release it (admission-outcome.ts); by a cancel, as cancelled.
    if (!cancelled) reason = releaseReasonOf(order.status, order.failure?.reason);
  } else if (order || !cancelled) return { released: false }; // Being paid (or no order): its outcome decides.
  // A cancelled sale's admission without an order is released as the cancel always did.
  const back = await releaseForOrder(deps, trx, campaign, orderId, reason);
  return { released: true, back };
}

/**
 * In the cancel's transaction (the campaign locked, marked cancelled): the payment window of every
 * admission still waiting closes now, in one statement. From then on the payment queue no longer
 * takes them (it reads windows still open), `POST /orders/{id}/pay` answers PAYMENT_WINDOW_CLOSED,
 * and the lifecycle's window sweep owns them: what the cancel's own batches (cancelWaitingBatch)
 * do not end, because the process died or a batch failed, the sweep ends the same way (endWaiting:
 * cancelled, for a cancelled sale). Answers how many are waiting.
 */
export async function closeWaitingWindows(trx: FlashSalesTrx, campaignId: string): Promise<number> {
  const { numUpdatedRows } = await trx
    .updateTable('flash_sales.admissions')
    .set({ pay_by: sql`least(pay_by, now())`, updated_at: new Date() })
    .where('campaign_id', '=', campaignId)
    .where('status', '=', 'admitted')
    .executeTakeFirst();
  return Number(numUpdatedRows);
}

/**
 * One of a cancelled sale's bounded transactions: the campaign locked first, then up to `limit` of
 * its admissions still waiting, by order id after `after` (skip locked: the window sweep, or
 * another process's batch, may hold some), each ended (endWaiting: its order cancelled, its units
 * back to stock, released as cancelled). All or nothing: a batch that fails (or a process killed
 * in it) leaves its admissions waiting, due, for the next batch or the sweep. Answers the last
 * order id it read (undefined when it read none: nothing is left after `after`).
 */
export async function cancelWaitingBatch(
  deps: FlashSalesDeps,
  tenantId: string,
  campaignId: string,
  actor: string,
  meta: EventMeta | undefined,
  after: string | undefined,
  limit = CANCEL_BATCH,
): Promise<string | undefined> {
  return withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as FlashSalesTrx;
    const campaign = await getCampaign(trx, campaignId, true);
    if (!campaign.cancelledAt) return undefined;
    let query = trx
      .selectFrom('flash_sales.admissions')
      .select('order_id')
      .where('campaign_id', '=', campaignId)
      .where('status', '=', 'admitted')
      .orderBy('order_id')
      .limit(limit)
      .forUpdate()
      .skipLocked();
    if (after !== undefined) query = query.where('order_id', '>', after);
    const rows = await query.execute();
    for (const { order_id } of rows) await endWaiting(deps, trx, tenantId, campaign, order_id, actor, meta);
    return rows.at(-1)?.order_id;
  });
}

/**
 * Ends every admission of a cancelled sale still waiting, in bounded transactions one after the
 * other (cancelWaitingBatch), yielding to the event loop between two (PGlite runs in it: one
 * transaction of thousands of orders held every other request of every store, and every timer,
 * for its whole length). Stops early when `stopped()` says so; what is left is the window
 * sweep's. Answers how many batches ran.
 */
export async function cancelAllWaiting(
  deps: FlashSalesDeps,
  tenantId: string,
  campaignId: string,
  actor: string,
  meta: EventMeta | undefined,
  stopped: () => boolean = () => false,
  limit = CANCEL_BATCH,
): Promise<number> {
  let after: string | undefined;
  let batches = 0;
  while (!stopped()) {
    after = await cancelWaitingBatch(deps, tenantId, campaignId, actor, meta, after, limit);
    batches += 1;
    if (after === undefined) break;
    await yieldToLoop();
  }
  return batches;
}
