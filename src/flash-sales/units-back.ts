import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { poolKey } from './campaign-store.ts';
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
