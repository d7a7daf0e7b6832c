import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { type FlashTestApp, runQueueUntilDone, startFlashApp } from './flash-test-fixtures.ts';
import { giveTokens, payLaterAdmissions } from './queue-test-fixtures.ts';

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

describe('the payment queue with more tenants queueing than a round serves', () => {
  it('serves the tenants in turn: the second gets its batch before the first its next one', async () => {
    const [first, second] = shops as [Shop, Shop];
    const firstOrders = await payLaterAdmissions(t, first, BATCH + 1);
    const [secondOrder] = await payLaterAdmissions(t, second, 1);
    // The app's own queue stops: only the queue under test runs from here on.
    await t.flashSales.stop?.();
    // Every buyer gave a token at once: both tenants' orders are queued together.
    await giveTokens(t, [...firstOrders, secondOrder!], 'tok_visa');
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
