import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  admissionOf,
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  runQueueUntilDone,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-payment-queue');
});
afterAll(() => t?.close());

/** Admissions one transaction of the queue takes (payment-queue.ts). */
const BATCH = 64;

describe('the payment queue of a tenant whose oldest queued orders were cancelled unseen', () => {
  it('takes them out of the queue and pays the order queued behind them (they filled every batch until their windows closed)', async () => {
    const variant = await saleVariant(t, shop, BATCH + 1);
    const sale = await createSale(t, shop, variant, { units: BATCH + 1, paymentWindowMinutes: 60 });
    const buyers = await bulkCustomers(t, shop, BATCH + 1);
    const orders: string[] = [];
    // Pay-later buyers, one after the other (the oldest first): nothing is queued yet.
    for (const buyer of buyers) {
      const admitted = await attempt(t, sale.id, buyer);
      expect(admitted.statusCode, admitted.body).toBe(202);
      orders.push(admitted.json().orderId);
    }
    // The app's own queue and clock stop: only the queue under test runs from here on.
    await t.flashSales.stop?.();
    const cancelled = orders.slice(0, BATCH);
    const paid = orders[BATCH]!;
    await withSystem(t.ctx.db.kysely, async (trx) => {
      // Every buyer gave a token; the oldest BATCH orders were then cancelled, their outcome never
      // reaching the sale (as a dead-lettered order event leaves them).
      await sql`update flash_sales.admissions set payment = ${JSON.stringify({ provider: 'test', token: 'tok_visa' })}::jsonb
        where campaign_id = ${sale.id}`.execute(trx);
      await sql`update orders.orders set status = 'cancelled', cancelled_at = now()
        where id = any(${cancelled}::uuid[])`.execute(trx);
    });
    await runQueueUntilDone(t, shop, paid, 20);
    expect((await admissionOf(t, paid))?.status).not.toBe('admitted');
    expect((await orderOf(t, shop, paid)).status).not.toBe('created');
    // The cancelled ones are no longer queued (their windows release them, as their events would).
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ n: number }>`select count(*)::int as n from flash_sales.admissions
        where order_id = any(${cancelled}::uuid[]) and payment is not null`.execute(trx),
    );
    expect(rows[0]!.n).toBe(0);
  });
});
