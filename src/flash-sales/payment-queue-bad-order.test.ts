import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import { createBreakers } from './breakers.ts';
import { type FlashTestApp, flashDeps, silent, startFlashApp } from './flash-test-fixtures.ts';
import { createPaymentQueue } from './payment-queue.ts';
import { giveTokens, payLaterAdmissions } from './queue-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-queue-bad-order');
}, 120_000);
afterAll(() => t?.close());

/** Runs a payment queue of the test's own until `done`. */
async function runQueue(done: () => Promise<boolean>, what: string) {
  const queue = createPaymentQueue(flashDeps(t), createBreakers(), silent);
  try {
    queue.kick();
    await until(done, what, 20_000);
  } finally {
    await queue.close();
  }
}

describe('the payment queue with an order whose saga cannot start', () => {
  it('pays the tenant’s other orders of the batch and takes that one out of the queue', async () => {
    const [seed, bad, good] = await payLaterAdmissions(t, shop, 3);
    // The app's own queue stops: only the queues under test run from here on.
    await t.flashSales.stop?.();
    await giveTokens(t, [seed!], 'tok_visa');
    await runQueue(
      async () => (await orderOf(t, shop, seed!)).status === 'completed',
      'the first order paid',
    );
    // A payment of the first order under the key the checkout pays `bad` under (staff could take it
    // before POST /payments refused such keys): `bad`'s saga cannot start.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`insert into payments.payments
        select (jsonb_populate_record(null::payments.payments,
          to_jsonb(p) || jsonb_build_object('id', gen_random_uuid(), 'key', ${`order-${bad}`}::text))).*
        from payments.payments p where p.tenant_id = ${shop.id}::uuid and p.order_id = ${seed}::uuid`.execute(
        trx,
      ),
    );
    await giveTokens(t, [bad!, good!], 'tok_visa');
    await runQueue(async () => (await orderOf(t, shop, good!)).status === 'completed', 'the good order paid');
    const queued = await withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows } = await sql<{ payment: unknown }>`
        select payment from flash_sales.admissions where order_id = ${bad}`.execute(trx);
      return rows[0]?.payment;
    });
    expect(queued).toBeNull();
    expect((await orderOf(t, shop, bad!)).status).toBe('created');
  }, 90_000);
});
