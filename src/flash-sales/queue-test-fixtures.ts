import { sql } from 'kysely';
import { expect } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { attempt, bulkCustomers, createSale, type FlashTestApp, saleVariant } from './flash-test-fixtures.ts';

/**
 * Pay-later admissions of `n` buyers of a new sale of the shop's (a window of an hour), one after
 * the other: their order ids, oldest first. Nothing is queued for payment yet (see {@link giveTokens}).
 */
export async function payLaterAdmissions(t: FlashTestApp, shop: Shop, n: number): Promise<string[]> {
  const sale = await createSale(t, shop, await saleVariant(t, shop, n), {
    units: n,
    paymentWindowMinutes: 60,
  });
  const orders: string[] = [];
  for (const buyer of await bulkCustomers(t, shop, n)) {
    const answer = await attempt(t, sale.id, buyer);
    expect(answer.statusCode, answer.body).toBe(202);
    orders.push(answer.json().orderId);
  }
  return orders;
}

/** The orders' buyers give the test provider's `token` at once: their admissions are queued for payment. */
export const giveTokens = (t: FlashTestApp, orderIds: string[], token: string) =>
  withSystem(t.ctx.db.kysely, (trx) =>
    sql`update flash_sales.admissions set payment = ${JSON.stringify({ provider: 'test', token })}::jsonb
      where order_id = any(${orderIds}::uuid[])`.execute(trx),
  );
