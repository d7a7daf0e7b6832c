import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  runQueueUntilDone,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

/** Admissions one transaction of the queue takes (payment-queue.ts). */
const BATCH = 64;

let t: FlashTestApp;
let shops: Shop[];

beforeAll(async () => {
  t = await startFlashApp();
  shops = [await createShop(t, 'fs-queue-first'), await createShop(t, 'fs-queue-second')];
  // By tenant id, the order the queue's rounds list them in.
  shops.sort((a, b) => (a.id < b.id ? -1 : 1));
});
afterAll(() => t?.close());

/** Pay-later admissions of `n` buyers of a sale of the shop's; their order ids, oldest first. */
async function admitted(shop: Shop, n: number): Promise<string[]> {
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

describe('the payment queue with more tenants queueing than a round serves', () => {
  it('serves the tenants in turn: the second gets its batch before the first its next one', async () => {
    const [first, second] = shops as [Shop, Shop];
    const firstOrders = await admitted(first, BATCH + 1);
    const [secondOrder] = await admitted(second, 1);
    // The app's own queue stops: only the queue under test runs from here on.
    await t.flashSales.stop?.();
    // Every buyer gave a token at once: both tenants' orders are queued together.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.admissions set payment = ${JSON.stringify({ provider: 'test', token: 'tok_visa' })}::jsonb
        where tenant_id = any(${[first.id, second.id]}::uuid[])`.execute(trx),
    );
    const last = firstOrders[BATCH]!;
    await runQueueUntilDone(t, first, last, 60, { tenantsPerRound: 1 });
    // Each order's payment is made as the queue starts its saga: the order it served them in.
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ order_id: string; created_at: Date }>`select order_id, created_at from payments.payments
        where order_id = any(${[last, secondOrder!]}::uuid[])`.execute(trx),
    );
    const madeAt = new Map(rows.map((r) => [r.order_id, new Date(r.created_at).getTime()]));
    expect(madeAt.size, JSON.stringify(rows)).toBe(2);
    expect(madeAt.get(secondOrder!)!).toBeLessThan(madeAt.get(last)!);
  });
});
