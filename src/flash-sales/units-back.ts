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
 * In trx: the units of a paid order cancelled later (refunded) come back on hand (its reservation
 * was committed; the saga's compensation leaves a committed reservation as it is while the sale's
 * pool is open) and, when `toPool` (the sale runs), into the pool for the next buyer, as a change
 * before the start moves them. Answers whether they reached the pool. Idempotent: a reservation
 * already returned puts nothing on hand twice, and the pool's side reservation is the order's.
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
  const side = `${pool}:refund:${orderId}`;
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
