import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Order } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  placeOrder,
  product,
  readyCart,
  send,
  settled,
  startCheckoutApp,
  stockOf,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  t = await startCheckoutApp();
  shop = await createStore(t, 'rush-shop');
});
afterAll(() => t.close());

describe('concurrent checkouts', () => {
  it('sells exactly the stock: 100 shoppers, 10 units, 10 completed and 90 failed OUT_OF_STOCK without a charge', async () => {
    const hot = await product(t, shop, 10);
    const carts = [];
    for (let i = 0; i < 100; i++) carts.push(await readyCart(t, shop, [{ variant: hot, quantity: 1 }]));
    const answers = await Promise.all(carts.map((cart, i) => placeOrder(t, cart, 'tok_visa', `rush-${i}`)));
    // Each answer is the finished order, its failure (with orderId), or 202 while it finishes.
    for (const a of answers) expect([201, 202, 409]).toContain(a.statusCode);
    const ids = answers.map((a) => a.json<{ id?: string; orderId?: string }>().orderId ?? a.json<Order>().id);
    const orders = await Promise.all(ids.map((id) => settled(t, shop, id)));
    const completed = orders.filter((o) => o.status === 'completed');
    const failed = orders.filter((o) => o.status === 'failed');
    expect(completed).toHaveLength(10);
    expect(failed).toHaveLength(90);
    for (const order of failed) expect(order.failure).toMatchObject({ reason: 'out_of_stock' });
    for (const a of answers.filter((a) => a.statusCode === 409))
      expect(a.json()).toMatchObject({ code: 'OUT_OF_STOCK' });
    expect(await stockOf(t, shop, hot)).toMatchObject({ onHand: 0, reserved: 0 });
    const { charges } = await t.payments.testProvider.ledger(shop.id);
    const charged = charges.filter((c) => c.capturedAmount > 0);
    expect(charged).toHaveLength(10);
    const completedIds = new Set(completed.map((o) => o.id));
    for (const charge of charges) {
      expect([...completedIds].some((id) => charge.idempotencyKey.includes(id))).toBe(true);
    }
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('places one order and takes one charge for 20 concurrent POST /orders with one Idempotency-Key', async () => {
    const item = await product(t, shop, 50);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => placeOrder(t, cart, 'tok_visa', 'same-key-20')),
    );
    const ids = new Set(answers.filter((a) => a.statusCode < 300).map((a) => a.json<Order>().id));
    expect(ids.size).toBe(1);
    // The others found the first's order (as it was when they read it: 202 while its saga runs),
    // or were told its checkout is still running (409 CONFLICT, Retry-After); none made its own.
    for (const a of answers) expect([200, 201, 202, 409]).toContain(a.statusCode);
    const replay = await placeOrder(t, cart, 'tok_visa', 'same-key-20');
    expect(replay.statusCode).toBeLessThan(300);
    expect(replay.json<Order>().id).toBe([...ids][0]);
    const [id] = ids;
    const { charges } = await t.payments.testProvider.ledger(shop.id);
    expect(charges.filter((c) => c.idempotencyKey.includes(id!))).toHaveLength(1);
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 49, reserved: 0 });
  });

  // PGlite has one session: no other transaction can hold the cart there.
  it.runIf(testDatabaseKind() === 'postgres')(
    'answers a retried POST /orders with its order while another transaction holds the cart',
    async () => {
      const item = await product(t, shop, 5);
      const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
      const cartId = (await send(t.app, 'GET', '/api/v1/cart', cart)).json<{ id: string }>().id;
      // A pending authorization keeps the order open and its cart in place.
      const first = await placeOrder(t, cart, 'tok_pending', 'held-cart-key');
      expect(first.statusCode, first.body).toBe(202);
      const replay = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
        await sql`select id from cart.carts where id = ${cartId} for update`.execute(trx);
        return placeOrder(t, cart, 'tok_pending', 'held-cart-key');
      });
      expect(replay.statusCode, replay.body).toBeLessThan(300);
      expect(replay.json<Order>().id).toBe(first.json<Order>().id);
    },
  );

  it('checks one cart out once when 10 POST /orders with different keys race: one order, the others 409 or 404, none a 5xx', async () => {
    const item = await product(t, shop, 50);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => placeOrder(t, cart, 'tok_visa', `race-key-${i}`)),
    );
    const placed = answers.filter((a) => a.statusCode < 300);
    expect(placed).toHaveLength(1);
    // Refused while the first checkout holds the cart (409 CONFLICT), or after it deleted it (404).
    for (const a of answers) expect([200, 201, 202, 404, 409]).toContain(a.statusCode);
    const [id] = placed.map((a) => a.json<Order>().id);
    const { charges } = await t.payments.testProvider.ledger(shop.id);
    expect(charges.filter((c) => c.idempotencyKey.includes(id!))).toHaveLength(1);
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 49, reserved: 0 });
  });
});
