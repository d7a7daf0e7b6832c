import { refundSideKey } from '../checkout/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { type Campaign, poolKey } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesTrx } from './tables.ts';

const GONE = ['RESERVATION_NOT_ACTIVE', 'NOT_FOUND'];

/**
 * In trx: what an unsold order still holds goes back to its campaign's pool while the pool is
 * open, else to available stock. Idempotent: a reservation the saga's compensation already moved
 * or released holds nothing, and nothing moves twice.
 */
export async function returnUnits(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  tenantId: string,
  orderId: string,
  campaignId: string,
  meta?: EventMeta,
): Promise<void> {
  const inventory = deps.inventory.within(trx);
  const key = `order-${orderId}`;
  const actor = `flash-sale:${campaignId}`;
  try {
    await inventory.transfer(tenantId, { from: key, to: poolKey(campaignId), actor }, meta);
    return;
  } catch (error) {
    if (!(error instanceof AppError) || !GONE.includes(error.code)) throw error;
  }
  try {
    await inventory.release(tenantId, key, actor, meta);
  } catch (error) {
    if (!(error instanceof AppError) || !GONE.includes(error.code)) throw error;
  }
}

/**
 * In trx: makes sure the units of a paid order cancelled later (refunded) are back, and answers
 * whether they reached the pool. The saga's compensation has made the move already, as it does
 * for any sale's order whose stock was committed (checkout/pool-units.ts): back on hand, and while
 * the pool is open from there into it through the side reservation `<pool>:refund:<orderId>`.
 * This names the same reservations, so it finds that done and moves nothing twice: the return
 * answers `returned` again, and the side, holding nothing, moves nothing (the pool is answered as
 * it is). Only an order whose units no saga gave back (cancelled without one) is moved here.
 * `toPool`: the sale runs (else the units stay on hand, or the settled pool took them to stock).
 */
export async function returnSoldUnits(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  tenantId: string,
  orderId: string,
  campaign: Pick<Campaign, 'id' | 'variantId'>,
  quantity: number,
  toPool: boolean,
  meta?: EventMeta,
): Promise<boolean> {
  const inventory = deps.inventory.within(trx);
  const actor = `flash-sale:${campaign.id}`;
  try {
    await inventory.returnStock(tenantId, `order-${orderId}`, actor, meta);
  } catch (error) {
    if (!(error instanceof AppError) || !GONE.includes(error.code)) throw error;
    return false;
  }
  if (!toPool) return false;
  const pool = poolKey(campaign.id);
  // The key the saga's compensation moves them through: one definition, so the two never part.
  const side = refundSideKey(pool, orderId);
  const lines = [{ variantId: campaign.variantId, quantity }];
  await inventory.reserve(tenantId, { key: side, lines, ttlSeconds: 60, actor }, meta);
  try {
    return (await inventory.transfer(tenantId, { from: side, to: pool, actor }, meta)).status === 'active';
  } catch (error) {
    if (!(error instanceof AppError) || !GONE.includes(error.code)) throw error;
    await inventory.release(tenantId, side, actor, meta);
    return false;
  }
}
