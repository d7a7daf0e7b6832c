import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addItem,
  type CartBody,
  type CartTestApp,
  createSellable,
  createShop,
  newCustomer,
  newGuestCart,
  reprice,
  type Shop,
  send,
  setStatus,
  setStock,
  startCartApp,
} from './cart-test-fixtures.ts';

let t: CartTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCartApp();
  shop = await createShop(t, 'cartshop');
  other = await createShop(t, 'othershop');
});
afterAll(() => t.close());

const getCart = async (headers: Record<string, string>) => send(t.app, 'GET', '/api/v1/cart', headers);

describe('guest carts', () => {
  it('gets a token once at creation and reaches the cart only with it', async () => {
    const created = await send(t.app, 'POST', '/api/v1/cart', { 'x-tenant': shop.slug }, {});
    expect(created.statusCode).toBe(201);
    const { token, cart } = created.json<{ token: string; cart: CartBody }>();
    expect(token).toMatch(/^ct_[A-Za-z0-9_-]{43}$/);
    expect(created.headers['x-cart-token']).toBe(token);
    expect(cart).toMatchObject({ customerId: null, currency: null, lines: [], itemCount: 0 });
    expect(cart.totals).toEqual({
      subtotal: 0,
      discount: 0,
      shipping: 0,
      tax: 0,
      total: 0,
      taxRateBps: 0,
      pricesIncludeTax: false,
    });
    const read = await getCart({ 'x-tenant': shop.slug, 'x-cart-token': token });
    expect(read.statusCode).toBe(200);
    expect(read.json().id).toBe(cart.id);
    expect(read.json()).not.toHaveProperty('token');
  });

  it('answers 404 to a missing, wrong or malformed token, and to the token sent to another store', async () => {
    const { token } = await newGuestCart(t, shop);
    expect((await getCart({ 'x-tenant': shop.slug })).statusCode).toBe(404);
    const wrong = `ct_${'A'.repeat(43)}`;
    expect((await getCart({ 'x-tenant': shop.slug, 'x-cart-token': wrong })).statusCode).toBe(404);
    expect((await getCart({ 'x-tenant': shop.slug, 'x-cart-token': 'nonsense' })).statusCode).toBe(404);
    const elsewhere = await getCart({ 'x-tenant': other.slug, 'x-cart-token': token });
    expect(elsewhere.statusCode).toBe(404);
    const variant = await createSellable(t, other);
    const add = await addItem(
      t,
      { 'x-tenant': other.slug, 'x-cart-token': token },
      { variantId: variant.id, quantity: 1 },
    );
    expect(add.statusCode).toBe(404);
  });

  it('lets browser storefronts send X-Tenant and X-Cart-Token and read the token header; takes POST /cart without a body', async () => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/cart/items',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-tenant, x-cart-token, content-type',
      },
    });
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
    expect(allowed).toContain('x-tenant');
    expect(allowed).toContain('x-cart-token');
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/cart',
      headers: { 'x-tenant': shop.slug, origin: 'https://shop.example' },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(String(created.headers['access-control-expose-headers']).toLowerCase()).toContain('x-cart-token');
    expect(created.headers['cache-control']).toBe('no-store');
  });

  it('needs X-Tenant from anonymous shoppers', async () => {
    const response = await send(t.app, 'POST', '/api/v1/cart', {}, {});
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('TENANT_REQUIRED');
    expect((await getCart({ 'x-tenant': 'no-such-shop' })).statusCode).toBe(404);
  });

  it('takes the currency of the first item added, or the one asked for', async () => {
    const variant = await createSellable(t, shop, { prices: { USD: 1200, EUR: 1000 } });
    const guest = await newGuestCart(t, shop);
    const added = await addItem(t, guest.headers, { variantId: variant.id, quantity: 1 });
    expect(added.statusCode).toBe(201);
    expect(added.json<CartBody>()).toMatchObject({ currency: 'EUR', totals: { subtotal: 1000 } });
    const usd = await newGuestCart(t, shop, { currency: 'USD' });
    const inUsd = await addItem(t, usd.headers, { sku: variant.sku, quantity: 2 });
    expect(inUsd.json<CartBody>()).toMatchObject({ currency: 'USD', totals: { subtotal: 2400 } });
    const mismatch = await addItem(t, usd.headers, { sku: variant.sku, quantity: 1, currency: 'EUR' });
    expect(mismatch.statusCode).toBe(409);
  });
});

describe('customer carts', () => {
  it('has no cart until the first item (GET answers 404), then one cart', async () => {
    const customer = await newCustomer(t, shop);
    expect((await getCart(customer)).statusCode).toBe(404);
    const variant = await createSellable(t, shop);
    const added = await addItem(t, customer, { variantId: variant.id, quantity: 2 });
    expect(added.statusCode).toBe(201);
    const cart = added.json<CartBody>();
    expect(cart.customerId).not.toBeNull();
    expect(cart.lines).toMatchObject([
      { variantId: variant.id, sku: variant.sku, quantity: 2, unitPrice: 1000 },
    ]);
    const again = await send(t.app, 'POST', '/api/v1/cart', customer, {});
    expect(again.statusCode).toBe(200);
    expect(again.json().cart.id).toBe(cart.id);
    expect(again.json()).not.toHaveProperty('token');
    expect((await getCart(customer)).json().id).toBe(cart.id);
  });

  it('creates the cart explicitly with POST /cart (201), and only once', async () => {
    const customer = await newCustomer(t, shop);
    const first = await send(t.app, 'POST', '/api/v1/cart', customer, { currency: 'EUR' });
    expect(first.statusCode).toBe(201);
    expect(first.json().cart.currency).toBe('EUR');
    const second = await send(t.app, 'POST', '/api/v1/cart', customer, {});
    expect(second.statusCode).toBe(200);
    expect(second.json().cart.id).toBe(first.json().cart.id);
  });
});

describe("a customer cart's currency", () => {
  it('is kept while the cart has lines, and an emptied cart takes the one asked for (it never could)', async () => {
    const customer = await newCustomer(t, shop);
    const variant = await createSellable(t, shop, { prices: { USD: 1200, EUR: 1000 } });
    const added = await addItem(t, customer, { variantId: variant.id, quantity: 1, currency: 'EUR' });
    const line = added.json<CartBody>().lines[0]!;
    const refused = await send(t.app, 'POST', '/api/v1/cart', customer, { currency: 'USD' });
    expect([refused.statusCode, refused.json().code]).toEqual([409, 'CONFLICT']);
    expect(
      (await addItem(t, customer, { variantId: variant.id, quantity: 1, currency: 'USD' })).statusCode,
    ).toBe(409);
    const emptied = await send(t.app, 'DELETE', `/api/v1/cart/items/${line.id}`, customer);
    expect(emptied.statusCode, emptied.body).toBe(200);
    const usd = await send(t.app, 'POST', '/api/v1/cart', customer, { currency: 'USD' });
    expect([usd.statusCode, usd.json().cart.currency]).toEqual([200, 'USD']);
    const inUsd = await addItem(t, customer, { variantId: variant.id, quantity: 1 });
    expect(inUsd.json<CartBody>()).toMatchObject({ currency: 'USD', totals: { subtotal: 1200 } });
    await send(t.app, 'DELETE', `/api/v1/cart/items/${inUsd.json<CartBody>().lines[0]!.id}`, customer);
    // An add naming a currency does the same for an empty cart.
    const inEur = await addItem(t, customer, { variantId: variant.id, quantity: 2, currency: 'EUR' });
    expect(inEur.json<CartBody>()).toMatchObject({ currency: 'EUR', totals: { subtotal: 2000 } });
  });
});

describe('the module API', () => {
  it('reads a cart by id for the order saga, within its tenant only', async () => {
    const variant = await createSellable(t, shop, { prices: { EUR: 700 } });
    const customer = await newCustomer(t, shop);
    const cart = (await addItem(t, customer, { variantId: variant.id, quantity: 3 })).json<CartBody>();
    const read = await t.cart.getCart(shop.id, cart.id);
    expect(read).toMatchObject({ id: cart.id, currency: 'EUR', totals: { subtotal: 2100, total: 2100 } });
    expect(await t.cart.getCart(other.id, cart.id)).toBeUndefined();
    expect(await t.cart.getCart(shop.id, 'not-a-uuid')).toBeUndefined();
    expect(await t.cart.getCart(shop.id, cart.id.toUpperCase())).toMatchObject({ id: cart.id });
  });
});

describe('items', () => {
  it('adds (summing a variant already in the cart), updates, removes and empties, totals following', async () => {
    const a = await createSellable(t, shop, { prices: { EUR: 250 } });
    const b = await createSellable(t, shop, { prices: { EUR: 1999 } });
    const { headers } = await newGuestCart(t, shop);
    await addItem(t, headers, { variantId: a.id, quantity: 1 });
    await addItem(t, headers, { sku: a.sku, quantity: 1 });
    await addItem(t, headers, { variantId: a.id.toUpperCase(), quantity: 1 });
    const both = (await addItem(t, headers, { variantId: b.id, quantity: 1 })).json<CartBody>();
    expect(both.lines.map((l) => [l.sku, l.quantity])).toEqual([
      [a.sku, 3],
      [b.sku, 1],
    ]);
    expect(both.totals).toMatchObject({ subtotal: 750 + 1999, total: 750 + 1999, tax: 0 });
    expect(both.itemCount).toBe(4);
    const lineA = both.lines[0]!.id;
    const updated = await send(t.app, 'PUT', `/api/v1/cart/items/${lineA}`, headers, { quantity: 5 });
    expect(updated.statusCode).toBe(200);
    expect(updated.json<CartBody>().totals.subtotal).toBe(1250 + 1999);
    const removed = await send(t.app, 'DELETE', `/api/v1/cart/items/${lineA}`, headers);
    expect(removed.json<CartBody>().lines.map((l) => l.sku)).toEqual([b.sku]);
    expect((await send(t.app, 'DELETE', `/api/v1/cart/items/${lineA}`, headers)).statusCode).toBe(404);
    const emptied = await send(t.app, 'DELETE', '/api/v1/cart/items', headers);
    expect(emptied.json<CartBody>()).toMatchObject({ lines: [], totals: { subtotal: 0, total: 0 } });
    expect((await getCart(headers)).json().lines).toEqual([]);
  });

  it('removes a line set to quantity 0', async () => {
    const a = await createSellable(t, shop);
    const { headers } = await newGuestCart(t, shop);
    const line = (await addItem(t, headers, { variantId: a.id, quantity: 1 })).json<CartBody>().lines[0]!;
    const zero = await send(t.app, 'PUT', `/api/v1/cart/items/${line.id}`, headers, { quantity: 0 });
    expect(zero.json<CartBody>().lines).toEqual([]);
  });

  it('answers 409 INSUFFICIENT_STOCK with the available quantity; backorders pass', async () => {
    const scarce = await createSellable(t, shop, { onHand: 3 });
    const { headers } = await newGuestCart(t, shop);
    const tooMany = await addItem(t, headers, { variantId: scarce.id, quantity: 4 });
    expect(tooMany.statusCode).toBe(409);
    expect(tooMany.json()).toMatchObject({ code: 'INSUFFICIENT_STOCK', available: 3 });
    const three = await addItem(t, headers, { variantId: scarce.id, quantity: 3 });
    expect(three.statusCode).toBe(201);
    const oneMore = await addItem(t, headers, { variantId: scarce.id, quantity: 1 });
    expect(oneMore.json()).toMatchObject({ code: 'INSUFFICIENT_STOCK', available: 3 });
    const line = three.json<CartBody>().lines[0]!;
    const raise = await send(t.app, 'PUT', `/api/v1/cart/items/${line.id}`, headers, { quantity: 4 });
    expect(raise.json()).toMatchObject({ code: 'INSUFFICIENT_STOCK', available: 3 });
    const none = await createSellable(t, shop, { onHand: 0 });
    expect((await addItem(t, headers, { variantId: none.id, quantity: 1 })).json()).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      available: 0,
    });
    const backorder = await createSellable(t, shop, { onHand: 0, allowBackorder: true });
    expect((await addItem(t, headers, { variantId: backorder.id, quantity: 7 })).statusCode).toBe(201);
    // Stock that falls below the cart's quantity is flagged on the next read, and lowering is allowed.
    await setStock(t, shop, scarce, 1);
    const read = (await getCart(headers)).json<CartBody>();
    expect(read.lines.find((l) => l.variantId === scarce.id)!.problem).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      available: 1,
    });
    const lower = await send(t.app, 'PUT', `/api/v1/cart/items/${line.id}`, headers, { quantity: 2 });
    expect(lower.statusCode).toBe(200);
  });

  it('refuses with 409 CART_TOTAL_TOO_LARGE a change that would make the total inexact in JSON, keeping the cart as it was', async () => {
    const { headers } = await newGuestCart(t, shop);
    // Each line at the limits: 10^12 minor units × 1,000. Nine make 9 × 10^15, under 2^53 − 1.
    for (let i = 0; i < 9; i++) {
      const costly = await createSellable(t, shop, { prices: { EUR: 1_000_000_000_000 }, onHand: 1000 });
      expect((await addItem(t, headers, { variantId: costly.id, quantity: 1000 })).statusCode).toBe(201);
    }
    const tenth = await createSellable(t, shop, { prices: { EUR: 1_000_000_000_000 }, onHand: 1000 });
    const refused = await addItem(t, headers, { variantId: tenth.id, quantity: 1000 });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'CART_TOTAL_TOO_LARGE', limit: Number.MAX_SAFE_INTEGER });
    const cart = (await getCart(headers)).json<CartBody>();
    expect(cart.lines).toHaveLength(9);
    expect(cart.totals.subtotal).toBe(9_000_000_000_000_000);
  });

  it('refuses inactive products (409), unknown variants (404) and variants without a price in the cart currency (409)', async () => {
    const draft = await createSellable(t, shop, { status: 'draft' });
    const { headers } = await newGuestCart(t, shop, { currency: 'EUR' });
    const refused = await addItem(t, headers, { variantId: draft.id, quantity: 1 });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('PRODUCT_NOT_AVAILABLE');
    const unknown = await addItem(t, headers, {
      variantId: '0190a5b6-0000-7000-8000-000000000000',
      quantity: 1,
    });
    expect(unknown.statusCode).toBe(404);
    expect((await addItem(t, headers, { sku: 'NO-SUCH-SKU', quantity: 1 })).statusCode).toBe(404);
    const dollars = await createSellable(t, shop, { prices: { USD: 500 } });
    const noPrice = await addItem(t, headers, { variantId: dollars.id, quantity: 1 });
    expect(noPrice.statusCode).toBe(409);
    expect(noPrice.json()).toMatchObject({
      code: 'PRODUCT_NOT_AVAILABLE',
      reason: 'NO_PRICE_IN_CURRENCY',
      currency: 'EUR',
    });
    // A product archived after it was added is flagged and counts for nothing; changing it is refused.
    const later = await createSellable(t, shop);
    const line = (await addItem(t, headers, { variantId: later.id, quantity: 2 })).json<CartBody>().lines[0]!;
    await setStatus(t, shop, later, 'archived');
    const read = (await getCart(headers)).json<CartBody>();
    expect(read.lines[0]).toMatchObject({ problem: { code: 'PRODUCT_NOT_AVAILABLE' }, subtotal: 0 });
    expect(read.totals.subtotal).toBe(0);
    const change = await send(t.app, 'PUT', `/api/v1/cart/items/${line.id}`, headers, { quantity: 1 });
    expect(change.json().code).toBe('PRODUCT_NOT_AVAILABLE');
  });

  it('updates a changed price and flags it until the shopper touches the line', async () => {
    const variant = await createSellable(t, shop, { prices: { EUR: 1000 } });
    const { headers } = await newGuestCart(t, shop);
    const line = (await addItem(t, headers, { variantId: variant.id, quantity: 2 })).json<CartBody>()
      .lines[0]!;
    expect(line.priceChanged).toBeNull();
    await reprice(t, shop, variant, { EUR: 1200 });
    const read = (await getCart(headers)).json<CartBody>();
    expect(read.lines[0]).toMatchObject({
      unitPrice: 1200,
      subtotal: 2400,
      priceChanged: { from: 1000, to: 1200 },
    });
    expect(read.totals.subtotal).toBe(2400);
    // Still flagged on the next read; the price they saw stays 1000 through a second change.
    await reprice(t, shop, variant, { EUR: 1300 });
    expect((await getCart(headers)).json<CartBody>().lines[0]!.priceChanged).toEqual({
      from: 1000,
      to: 1300,
    });
    const touched = await send(t.app, 'PUT', `/api/v1/cart/items/${line.id}`, headers, { quantity: 2 });
    expect(touched.json<CartBody>().lines[0]).toMatchObject({ unitPrice: 1300, priceChanged: null });
    // Back to the price they saw: nothing to flag.
    await reprice(t, shop, variant, { EUR: 1400 });
    await getCart(headers);
    await reprice(t, shop, variant, { EUR: 1300 });
    expect((await getCart(headers)).json<CartBody>().lines[0]!.priceChanged).toBeNull();
  });
});

describe('idempotency', () => {
  it('replays POST /cart/items for the same Idempotency-Key instead of adding twice', async () => {
    const variant = await createSellable(t, shop);
    const { headers } = await newGuestCart(t, shop);
    const keyed = { ...headers, 'idempotency-key': 'add-once-1' };
    const first = await addItem(t, keyed, { variantId: variant.id, quantity: 1 });
    const second = await addItem(t, keyed, { variantId: variant.id, quantity: 1 });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    expect((await getCart(headers)).json<CartBody>().lines[0]!.quantity).toBe(1);
    const otherBody = await addItem(t, keyed, { variantId: variant.id, quantity: 2 });
    expect(otherBody.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    // Another guest (same address, same key) is not answered with the first guest's cart.
    const stranger = await newGuestCart(t, shop);
    const theirs = await addItem(
      t,
      { ...stranger.headers, 'idempotency-key': 'add-once-1' },
      { variantId: variant.id, quantity: 1 },
    );
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(theirs.json<CartBody>().id).not.toBe(first.json<CartBody>().id);
  });

  it("replays a guest's retry that comes from another network: the cart token, not the address, is who they are", async () => {
    const variant = await createSellable(t, shop);
    const { headers } = await newGuestCart(t, shop);
    const from = (remoteAddress: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/cart/items',
        remoteAddress,
        headers: { ...headers, 'idempotency-key': 'roam-1' },
        payload: { variantId: variant.id, quantity: 1 },
      });
    const first = await from('198.51.100.7');
    // The phone left the Wi-Fi before the answer came: it retries over its mobile network.
    const retry = await from('203.0.113.9');
    expect(first.statusCode, first.body).toBe(201);
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect((await getCart(headers)).json<CartBody>().lines[0]!.quantity).toBe(1);
  });
});

describe('tenant isolation and bad input', () => {
  it("answers 404 for another tenant's cart item ids", async () => {
    const variant = await createSellable(t, shop);
    const mine = await newCustomer(t, shop);
    const line = (await addItem(t, mine, { variantId: variant.id, quantity: 1 })).json<CartBody>().lines[0]!;
    const theirs = await newCustomer(t, other);
    await addItem(t, theirs, { variantId: (await createSellable(t, other)).id, quantity: 1 });
    expect(
      (await send(t.app, 'PUT', `/api/v1/cart/items/${line.id}`, theirs, { quantity: 3 })).statusCode,
    ).toBe(404);
    expect((await send(t.app, 'DELETE', `/api/v1/cart/items/${line.id}`, theirs)).statusCode).toBe(404);
    // Nor can another customer of the same shop touch it.
    const neighbour = await newCustomer(t, shop);
    await addItem(t, neighbour, { variantId: variant.id, quantity: 1 });
    expect((await send(t.app, 'DELETE', `/api/v1/cart/items/${line.id}`, neighbour)).statusCode).toBe(404);
    // A variant of another tenant is unknown here.
    const foreign = await createSellable(t, other);
    expect((await addItem(t, mine, { variantId: foreign.id, quantity: 1 })).statusCode).toBe(404);
    expect((await getCart(mine)).json<CartBody>().lines[0]!.quantity).toBe(1);
  });

  it('lists failing fields for bad input', async () => {
    const { headers } = await newGuestCart(t, shop);
    const pointers = (body: { errors: { pointer: string }[] }) => body.errors.map((e) => e.pointer).sort();
    const cases: [Record<string, unknown>, string[]][] = [
      [{ quantity: 1 }, ['/variantId']],
      [{ variantId: '0190a5b6-0000-7000-8000-000000000000', sku: 'X', quantity: 1 }, ['/sku']],
      [{ sku: 'X', quantity: 0 }, ['/quantity']],
      [{ sku: 'X', quantity: 1001 }, ['/quantity']],
      [{ sku: 'X', quantity: 1.5 }, ['/quantity']],
      [{ variantId: 'not-a-uuid', quantity: 1 }, ['/variantId']],
      [{ sku: 'X', quantity: 1, currency: 'euro' }, ['/currency']],
      [{ sku: 'X', quantity: 1, price: 1 }, ['/price']],
    ];
    for (const [body, expected] of cases) {
      const response = await addItem(t, headers, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(pointers(response.json()), JSON.stringify(body)).toEqual(expected);
    }
    expect((await send(t.app, 'PUT', '/api/v1/cart/items/nope', headers, { quantity: 1 })).statusCode).toBe(
      400,
    );
    expect(
      (
        await send(t.app, 'PUT', '/api/v1/cart/items/0190a5b6-0000-7000-8000-000000000000', headers, {
          quantity: -1,
        })
      ).statusCode,
    ).toBe(400);
    expect(
      (await send(t.app, 'POST', '/api/v1/cart', { 'x-tenant': shop.slug }, { currency: 'EURO' })).statusCode,
    ).toBe(400);
  });
});

describe('concurrency', () => {
  it('counts every one of concurrent adds to one cart, and makes one cart of concurrent first adds', async () => {
    const variant = await createSellable(t, shop, { onHand: 1000 });
    const customer = await newCustomer(t, shop);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => addItem(t, customer, { variantId: variant.id, quantity: 1 })),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(12).fill(201));
    expect(new Set(answers.map((a) => a.json<CartBody>().id)).size).toBe(1);
    expect((await getCart(customer)).json<CartBody>().lines).toMatchObject([{ quantity: 12 }]);
  });

  it('never lets concurrent adds pass the stock together', async () => {
    const variant = await createSellable(t, shop, { onHand: 5 });
    const { headers } = await newGuestCart(t, shop);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => addItem(t, headers, { variantId: variant.id, quantity: 1 })),
    );
    expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(5);
    expect(answers.filter((a) => a.statusCode === 409)).toHaveLength(3);
    expect((await getCart(headers)).json<CartBody>().lines[0]!.quantity).toBe(5);
  });
});
