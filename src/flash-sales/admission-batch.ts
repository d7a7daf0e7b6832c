import { together } from '../platform/db/index.ts';
import type { DomainEvent } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { Candidate, Committed } from './admission-committer.ts';
import { type Admission, customersOf, toAdmission } from './admission-store.ts';
import { addressKey, shippingAddresses } from './batch-addresses.ts';
import { campaignEvent, publishCampaignEvents } from './campaign-events.ts';
import { type Campaign, getCampaign, lockedStatusOf, poolKey } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { flashOrder } from './flash-order.ts';
import { dedupeKey } from './gate.ts';
import { PoolShort, poolHeldBefore } from './pool-shortfall.ts';
import type { FlashSalesTrx } from './tables.ts';

/**
 * One batch's transaction (see createAdmissionCommitter); answers in the candidates' order, and
 * the campaign's units before and after. `short`: units an earlier run of this batch found the
 * pool lacking (PoolShort): the record's units come down by that much (never below the units
 * admitted) and the attempts past them are sold out, in the batch's order.
 */
export async function commitBatch(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  campaignId: string,
  candidates: Candidate[],
  numbered: Promise<number[]>,
  short: number,
): Promise<{ answers: Committed[]; units: { from: number; to: number } }> {
  const tenantId = candidates[0]!.tenantId;
  // Sent together (one round trip): the reads run once the campaign's lock is granted, so they
  // see every batch committed before it.
  const [campaign, { units, byKey }, addresses] = await together([
    getCampaign(trx, campaignId, true),
    customersOf(
      trx,
      campaignId,
      candidates.map((c) => c.customerId),
    ),
    shippingAddresses(deps, trx, candidates),
  ]);
  const now = new Date();
  const status = lockedStatusOf(campaign, now);
  if (status !== 'live' && status !== 'sold_out') {
    const error = new AppError('NOT_LIVE', `flash sale ${campaignId} is ${status}`);
    const answers = candidates.map((): Committed => ({ outcome: 'refused', error }));
    return { answers, units: { from: campaign.units, to: campaign.units } };
  }
  const allotted = short > 0 ? Math.max(campaign.admitted, campaign.units - short) : campaign.units;
  let admitted = campaign.admitted;
  const answers: Committed[] = [];
  const accepted: { candidate: Candidate; index: number }[] = [];
  for (const [index, c] of candidates.entries()) {
    const earlier = byKey.get(dedupeKey(c.customerId, c.key));
    if (earlier) {
      answers.push(
        c.request.matches(earlier.requestHash)
          ? { outcome: 'duplicate', admission: earlier }
          : {
              outcome: 'refused',
              error: new AppError(
                'IDEMPOTENCY_KEY_REUSED',
                'this Idempotency-Key was used with another request',
              ),
            },
      );
      continue;
    }
    const held = units.get(c.customerId) ?? 0;
    if (held + c.quantity > campaign.perCustomerLimit) {
      answers.push({ outcome: 'refused', error: limitReached(campaign, held) });
      continue;
    }
    if (admitted + c.quantity > allotted) {
      answers.push({ outcome: 'refused', error: soldOut(campaign) });
      continue;
    }
    const address = addresses.get(addressKey(c));
    if (!address) {
      answers.push({
        outcome: 'refused',
        error: new AppError(
          'CHECKOUT_INVALID',
          c.shippingAddressId
            ? `address ${c.shippingAddressId} is not one of your shipping addresses`
            : 'you have no default shipping address: add one, or name one with shippingAddressId',
        ),
      });
      continue;
    }
    admitted += c.quantity;
    units.set(c.customerId, held + c.quantity);
    // The attempt is in the batch now: the same key again in this batch is its duplicate.
    const placeholder = { outcome: 'admitted' } as Committed;
    answers.push(placeholder);
    byKey.set(dedupeKey(c.customerId, c.key), {
      orderId: c.orderId,
      requestHash: c.request.hash,
    } as Admission);
    accepted.push({ candidate: c, index });
  }
  const result = { answers, units: { from: campaign.units, to: allotted } };
  if (accepted.length === 0 && allotted === campaign.units) return result;
  const announced = { ...campaign.announced };
  const made: DomainEvent[] = [];
  const after: Campaign = { ...campaign, units: allotted, admitted, announced };
  if (!announced.started) {
    announced.started = now.toISOString();
    made.push(campaignEvent('started', after, now));
  }
  if (admitted >= allotted && !announced.soldOut) {
    announced.soldOut = now.toISOString();
    made.push(campaignEvent('soldOut', after, now));
  }
  const counted = () =>
    trx
      .updateTable('flash_sales.campaigns')
      .set({ units: allotted, admitted, announced: JSON.stringify(announced), updated_at: now })
      .where('id', '=', campaign.id)
      .execute();
  if (accepted.length === 0) {
    // Nothing to admit, but the record comes down to the pool (and announces the sell-out).
    await counted();
    await publishCampaignEvents(deps.events, trx, tenantId, made);
    return result;
  }
  const numbers = await numbered;
  const payBy = new Date(now.getTime() + campaign.paymentWindowMinutes * 60_000);
  // Set-oriented, and sent together (none reads what another writes): the orders in one
  // statement, their units moved from the pool in one batch, the admissions, the campaign's count.
  const [, moved, rows] = await together([
    deps.orders.createMany(
      trx,
      tenantId,
      accepted.map(({ candidate: c }) => flashOrder(campaign, c, addresses.get(addressKey(c))!)),
      accepted.map((a) => numbers[a.index]!),
      accepted.map(({ candidate: c }) => c.meta),
    ),
    deps.inventory.within(trx).transferMany(
      tenantId,
      accepted.map(({ candidate: c }) => ({
        input: {
          from: poolKey(campaign.id),
          to: `order-${c.orderId}`,
          lines: [{ variantId: campaign.variantId, quantity: c.quantity }],
          ttlSeconds: orderHoldSeconds(campaign, now),
          reference: `order:${c.orderId}`,
          actor: `flash-sale:${campaign.id}`,
        },
        meta: c.meta,
      })),
    ),
    trx
      .insertInto('flash_sales.admissions')
      .values(
        accepted.map(({ candidate: c }) => ({
          order_id: c.orderId,
          tenant_id: tenantId,
          campaign_id: campaign.id,
          customer_id: c.customerId,
          idempotency_key: c.key,
          request_hash: c.request.hash,
          quantity: c.quantity,
          status: 'admitted' as const,
          payment: c.payment ? JSON.stringify(c.payment) : null,
          pay_by: payBy,
          admitted_at: now,
          updated_at: now,
        })),
      )
      .returningAll()
      .execute(),
    counted(),
  ]);
  // The pool should hold every unit not admitted (the sale's row is locked). One holding fewer (a
  // bug, a change to the pool behind the sale's back, a crash between two steps) refuses some
  // transfers: nothing of the batch is recorded, and the batch runs again with the record lowered
  // by what the pool lacks (PoolShort), so that it sells what the pool holds and answers the rest
  // sold out, where it failed whole (and every batch after it) with INSUFFICIENT_STOCK.
  const refused = moved.find((m) => m instanceof AppError);
  if (refused) {
    const held = poolHeldBefore(
      moved,
      accepted.map((a) => a.candidate.quantity),
    );
    const lacking = held === undefined ? 0 : campaign.units - campaign.admitted - held;
    if (lacking > 0) throw new PoolShort(lacking, refused as AppError);
    throw refused;
  }
  const byOrder = new Map(rows.map((r) => [r.order_id, toAdmission(r)]));
  for (const { candidate: c, index } of accepted) {
    answers[index] = { outcome: 'admitted', admission: byOrder.get(c.orderId)! };
  }
  await publishCampaignEvents(deps.events, trx, tenantId, made);
  return result;
}

/**
 * How long an admitted order's reservation holds its units: as long as the sale's pool (to the
 * sale's end, its payment window and an hour; under 30 days), while the window's own sweep gives
 * unpaid units back at the deadline. Held only to the window's close and ten minutes, the units
 * expired into available stock when the sweep was late (every process down for a deploy, or a
 * saga still paying): out of the sale, which still counted them as its own when the order was
 * released, so its pool fell short of units − admitted and every batch asking for the missing
 * units failed whole, the last units never sold.
 */
export const orderHoldSeconds = (
  campaign: Pick<Campaign, 'endsAt' | 'paymentWindowMinutes'>,
  now: Date,
): number =>
  Math.max(0, Math.ceil((campaign.endsAt.getTime() - now.getTime()) / 1000)) +
  campaign.paymentWindowMinutes * 60 +
  3600;

export const soldOut = (campaign: Pick<Campaign, 'id'>) =>
  new AppError('SOLD_OUT', `flash sale ${campaign.id} is sold out`);

export const limitReached = (campaign: Pick<Campaign, 'id' | 'perCustomerLimit'>, held: number) =>
  new AppError(
    'LIMIT_REACHED',
    `you hold ${held} of this sale's limit of ${campaign.perCustomerLimit} per customer`,
    { limit: campaign.perCustomerLimit, held },
  );
