import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import {
  addItem,
  type CartBody,
  type CartTestApp,
  createSellable,
  createShop,
  newCustomer,
  newGuestCart,
  type Shop,
  send,
  setStatus,
  startCartApp,
} from './cart-test-fixtures.ts';
import { purgeIdleCarts } from './index.ts';
import type { CartDb } from './tables.ts';

let t: CartTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCartApp();
  shop = await createShop(t, 'mergeshop');
  other = await createShop(t, 'mergeother');
});
afterAll(() => t.close());

const merge = (customer: Record<string, string>, token: string) =>
  send(t.app, 'POST', '/api/v1/cart/merge', { ...customer, 'x-cart-token': token });
const berlin = {
  recipient: 'Erika',
  line1: 'Unter den Linden 1',
  city: 'Berlin',
  postalCode: '10117',
  country: 'DE',
};

describe('merging a guest cart after login', () => {
  it("sums quantities into the customer's cart and deletes the guest cart", async () => {
    const x = await createSellable(t, shop, { prices: { EUR: 100 } });
    const y = await createSellable(t, shop, { prices: { EUR: 250 } });
    const guest = await newGuestCart(t, shop);
    await addItem(t, guest.headers, { variantId: x.id, quantity: 2 });
    await addItem(t, guest.headers, { variantId: y.id, quantity: 1 });
    await send(t.app, 'PUT', '/api/v1/cart/addresses', guest.headers, { shipping: berlin });
    const customer = await newCustomer(t, shop);
    const mine = (await addItem(t, customer, { variantId: x.id, quantity: 1 })).json<CartBody>();

    const merged = await merge(customer, guest.token);
    expect(merged.statusCode, merged.body).toBe(200);
    const { cart, adjustments } = merged.json<{ cart: CartBody; adjustments: unknown[] }>();
    expect(cart.id).toBe(mine.id);
    expect(adjustments).toEqual([]);
    expect(cart.lines.map((l) => [l.variantId, l.quantity])).toEqual([
      [x.id, 3],
      [y.id, 1],
    ]);
    expect(cart.totals.subtotal).toBe(550);
    expect(cart.shippingAddress).toMatchObject({ city: 'Berlin' });
    expect((await send(t.app, 'GET', '/api/v1/cart', guest.headers)).statusCode).toBe(404);
    expect((await merge(customer, guest.token)).statusCode).toBe(404);
  });

  it('gives the guest cart to a customer who has none', async () => {
    const x = await createSellable(t, shop);
    const guest = await newGuestCart(t, shop);
    await addItem(t, guest.headers, { variantId: x.id, quantity: 2 });
    const customer = await newCustomer(t, shop);
    const merged = (await merge(customer, guest.token)).json<{ cart: CartBody }>();
    expect(merged.cart.customerId).not.toBeNull();
    expect(merged.cart.lines).toMatchObject([{ variantId: x.id, quantity: 2 }]);
    expect((await send(t.app, 'GET', '/api/v1/cart', customer)).json<CartBody>().id).toBe(merged.cart.id);
  });

  it('caps summed quantities at the stock and leaves out lines that cannot be sold, saying so', async () => {
    const scarce = await createSellable(t, shop, { onHand: 4 });
    const gone = await createSellable(t, shop);
    const guest = await newGuestCart(t, shop);
    await addItem(t, guest.headers, { variantId: scarce.id, quantity: 3 });
    await addItem(t, guest.headers, { variantId: gone.id, quantity: 1 });
    const customer = await newCustomer(t, shop);
    await addItem(t, customer, { variantId: scarce.id, quantity: 2 });
    await setStatus(t, shop, gone, 'archived');
    const { cart, adjustments } = (await merge(customer, guest.token)).json<{
      cart: CartBody;
      adjustments: { variantId: string; requested: number; quantity: number; reason: string }[];
    }>();
    expect(cart.lines.map((l) => [l.variantId, l.quantity])).toEqual([[scarce.id, 4]]);
    expect(adjustments).toEqual(
      expect.arrayContaining([
        { variantId: scarce.id, sku: scarce.sku, requested: 5, quantity: 4, reason: 'INSUFFICIENT_STOCK' },
        { variantId: gone.id, sku: gone.sku, requested: 1, quantity: 0, reason: 'PRODUCT_NOT_AVAILABLE' },
      ]),
    );
  });

  it('says so when the summed quantity passes the 1,000 units of a line, which it was silent about', async () => {
    const plenty = await createSellable(t, shop, { onHand: 5000 });
    const guest = await newGuestCart(t, shop);
    await addItem(t, guest.headers, { variantId: plenty.id, quantity: 600 });
    const customer = await newCustomer(t, shop);
    await addItem(t, customer, { variantId: plenty.id, quantity: 700 });
    const { cart, adjustments } = (await merge(customer, guest.token)).json<{
      cart: CartBody;
      adjustments: unknown[];
    }>();
    expect(cart.lines.map((l) => [l.variantId, l.quantity])).toEqual([[plenty.id, 1000]]);
    expect(adjustments).toEqual([
      { variantId: plenty.id, sku: plenty.sku, requested: 1300, quantity: 1000, reason: 'LINE_LIMIT' },
    ]);
  });

  it("flags no price change between a guest's price in another currency and the customer's", async () => {
    const both = await createSellable(t, shop, { prices: { EUR: 1000, USD: 1500 } });
    const guest = await newGuestCart(t, shop, { currency: 'EUR' });
    await addItem(t, guest.headers, { variantId: both.id, quantity: 1 });
    const customer = await newCustomer(t, shop);
    const other = await createSellable(t, shop, { prices: { USD: 200 } });
    await addItem(t, customer, { variantId: other.id, quantity: 1, currency: 'USD' });
    const { cart } = (await merge(customer, guest.token)).json<{ cart: CartBody }>();
    expect(cart.currency).toBe('USD');
    // 1000 euro cents were never a price in dollars: no {from: 1000, to: 1500}.
    expect(cart.lines.find((l) => l.variantId === both.id)).toMatchObject({
      unitPrice: 1500,
      priceChanged: null,
    });
  });

  it('needs a signed-in customer and a guest token of the same store', async () => {
    const guest = await newGuestCart(t, shop);
    expect((await send(t.app, 'POST', '/api/v1/cart/merge', guest.headers)).statusCode).toBe(401);
    const customer = await newCustomer(t, shop);
    expect((await send(t.app, 'POST', '/api/v1/cart/merge', customer)).statusCode).toBe(404);
    const foreigner = await newCustomer(t, other);
    expect((await merge(foreigner, guest.token)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', '/api/v1/cart', guest.headers)).statusCode).toBe(200);
  });

  it('merges one guest cart once when two merges race', async () => {
    const x = await createSellable(t, shop);
    const guest = await newGuestCart(t, shop);
    await addItem(t, guest.headers, { variantId: x.id, quantity: 2 });
    const customer = await newCustomer(t, shop);
    const answers = await Promise.all([merge(customer, guest.token), merge(customer, guest.token)]);
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 404]);
    expect((await send(t.app, 'GET', '/api/v1/cart', customer)).json<CartBody>().lines[0]!.quantity).toBe(2);
  });
});

describe('idle carts', () => {
  // PGlite has one connection: the customer's cart cannot be held locked meanwhile.
  it.skipIf(testDatabaseKind() === 'pglite')(
    'moves a line the guest added while the merge waited for the carts',
    async () => {
      const x = await createSellable(t, shop, { prices: { EUR: 100 } });
      const late = await createSellable(t, shop, { prices: { EUR: 300 } });
      const guest = await newGuestCart(t, shop);
      await addItem(t, guest.headers, { variantId: x.id, quantity: 1 });
      const customer = await newCustomer(t, shop);
      const mine = (await addItem(t, customer, { variantId: x.id, quantity: 1 })).json<CartBody>();
      let release!: () => void;
      let locked!: () => void;
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holder = withSystem(t.ctx.db.kysely, async (trx) => {
        await sql`select id from cart.carts where id = ${mine.id} for update`.execute(trx);
        locked();
        await released;
      });
      await isLocked;
      let merging: ReturnType<typeof merge> | undefined;
      try {
        merging = merge(customer, guest.token);
        // Once the merge waits for the customer's cart, the guest adds another variant.
        for (;;) {
          const waiting = await withSystem(t.ctx.db.kysely, (trx) =>
            sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
              where wait_event_type = 'Lock' and datname = current_database()`.execute(trx),
          );
          if (waiting.rows[0]!.n > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect((await addItem(t, guest.headers, { variantId: late.id, quantity: 2 })).statusCode).toBe(201);
      } finally {
        release();
        await holder;
      }
      const merged = await merging;
      expect(merged.statusCode, merged.body).toBe(200);
      const { cart, adjustments } = merged.json<{ cart: CartBody; adjustments: unknown[] }>();
      expect(adjustments).toEqual([]);
      expect(cart.lines.map((l) => [l.variantId, l.quantity])).toEqual([
        [x.id, 2],
        [late.id, 2],
      ]);
    },
  );

  it('are purged after the TTL, with their lines; carts in use stay', async () => {
    const x = await createSellable(t, shop);
    const idle = await newGuestCart(t, shop);
    await addItem(t, idle.headers, { variantId: x.id, quantity: 1 });
    const customer = await newCustomer(t, shop);
    const idleCustomer = (await addItem(t, customer, { variantId: x.id, quantity: 1 })).json<CartBody>();
    const fresh = await newGuestCart(t, shop);
    const freshCart = (await send(t.app, 'GET', '/api/v1/cart', fresh.headers)).json<CartBody>();
    const ttl = t.ctx.config.cartTtlSeconds;
    const idleId = (await send(t.app, 'GET', '/api/v1/cart', idle.headers)).json<CartBody>().id;
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update cart.carts set active_at = now() - make_interval(secs => ${ttl + 60})
          where id in (${idleId}, ${idleCustomer.id})`.execute(trx),
    );
    expect(await purgeIdleCarts(t.ctx.db.kysely as CartDb, ttl)).toBeGreaterThanOrEqual(2);
    expect((await send(t.app, 'GET', '/api/v1/cart', idle.headers)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', '/api/v1/cart', customer)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', '/api/v1/cart', fresh.headers)).json<CartBody>().id).toBe(freshCart.id);
    const lines = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{
        n: number;
      }>`select count(*)::int as n from cart.lines where cart_id in (${idleId}, ${idleCustomer.id})`.execute(
        trx,
      ),
    );
    expect(lines.rows[0]!.n).toBe(0);
    // The customer starts again with a new cart.
    expect((await addItem(t, customer, { variantId: x.id, quantity: 1 })).statusCode).toBe(201);
  });

  it('keeps a cart that is read (reads count as use)', async () => {
    const guest = await newGuestCart(t, shop);
    const ttl = t.ctx.config.cartTtlSeconds;
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update cart.carts set active_at = now() - make_interval(secs => ${ttl - 10})`.execute(trx),
    );
    const read = (await send(t.app, 'GET', '/api/v1/cart', guest.headers)).json<CartBody>();
    // The answer's expiry counts from this read.
    expect(Date.parse(read.expiresAt)).toBeGreaterThan(Date.now() + (ttl - 60) * 1000);
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update cart.carts set active_at = active_at - interval '20 seconds' where active_at < now() - interval '1 hour'`.execute(
        trx,
      ),
    );
    await purgeIdleCarts(t.ctx.db.kysely as CartDb, ttl);
    expect((await send(t.app, 'GET', '/api/v1/cart', guest.headers)).statusCode).toBe(200);
  });
});
