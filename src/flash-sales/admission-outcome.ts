import { sql } from 'kysely';
import type { Order } from '../orders/index.ts';
import { type Admission, releaseAdmissions } from './admission-store.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { type FlashSalesTrx, RELEASE_REASONS, type ReleaseReason } from './tables.ts';
import { returnSoldUnits, returnUnits } from './units-back.ts';

/** What became of an admission's order, once final: paid, or failed or cancelled (with the failure's reason). */
export type OrderOutcome = { status: 'completed' } | { status: 'failed' | 'cancelled'; failure?: string };

/** The outcome of an order that has one; undefined while it is still on its way (created, being paid). */
export function outcomeOf(order: Pick<Order, 'status' | 'failure'>): OrderOutcome | undefined {
  if (order.status === 'completed') return { status: 'completed' };
  if (order.status === 'failed' || order.status === 'cancelled')
    return { status: order.status, failure: order.failure?.reason };
  return undefined;
}

/** Why an admission whose order was cancelled or failed is released: a failure's own reason when it is one. */
export function releaseReasonOf(status: 'cancelled' | 'failed', failure: string | undefined): ReleaseReason {
  if (status === 'cancelled') return 'cancelled';
  return failure && (RELEASE_REASONS as readonly string[]).includes(failure)
    ? (failure as ReleaseReason)
    : 'payment_error';
}

/**
 * In trx, the admission's row locked: its order's units back (into the pool while it is open, else
 * to stock) and the admission released with `reason`. Answers the admission when it was released
 * here and the sale is neither settled nor cancelled: its units then go back to the gate too
 * (by its key, so nothing is given twice). Idempotent: an admission released already, or paid,
 * moves no counter, and a reservation moved already moves nothing (units-back.ts).
 */
export async function releaseForOrder(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  campaign: Campaign,
  orderId: string,
  reason: ReleaseReason,
): Promise<Admission | undefined> {
  // A saga's compensation put them back already; an order cancelled before its payment did not.
  await returnUnits(deps, trx, campaign.tenantId, orderId, campaign.id);
  const [released] = await releaseAdmissions(trx, campaign.id, [orderId], reason);
  return released && !campaign.settledAt && !campaign.cancelledAt ? released : undefined;
}

/**
 * In trx, the admission's row locked (and its campaign's when given: a caller that took the
 * campaign first, in the order a sale's cancel locks them): applies what its order came to, as
 * its order event does (order-outcomes.ts) and as the lifecycle's sweep of admissions whose event
 * never came does (paying-sweep.ts), one implementation for both. completed → paid (`sold`
 * rises); failed or cancelled → released (releaseForOrder); a paid admission whose order was
 * cancelled later (refunded) → released, its units back on hand and, while the sale runs, into
 * its pool. Every move is guarded by the admission's status, so the same outcome applied again (a
 * late or requeued event after the sweep, a retry) changes nothing. Answers the admission whose
 * units go back to the gate (the caller gives them back, by its key), if any.
 */
export async function applyOrderOutcome(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  admission: Admission,
  outcome: OrderOutcome,
  locked?: Campaign,
): Promise<Admission | undefined> {
  if (outcome.status === 'completed') {
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
    return undefined;
  }
  // Released already (its window's sweep, its sale's cancel, an earlier event): its units went back
  // when it was, so nothing moves; a mass cancel's thousands of events each cost one read, not six.
  if (admission.status === 'released') return undefined;
  const campaign = locked ?? (await getCampaign(trx, admission.campaignId, true));
  if (admission.status !== 'paid')
    return releaseForOrder(
      deps,
      trx,
      campaign,
      admission.orderId,
      releaseReasonOf(outcome.status, outcome.failure),
    );
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
  return pooled ? admission : undefined;
}
