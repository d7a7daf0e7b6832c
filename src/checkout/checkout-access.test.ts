import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSellable, newCustomer, newGuestCart } from '../cart/cart-test-fixtures.ts';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  BERLIN,
  type CheckoutTestApp,
  createStore,
  placeOrder,
  product,
  readyCart,
  send,
  startCheckoutApp,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;
let other: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  t = await startCheckoutApp();
  shop = await createStore(t, 'access-shop');
  other = await createStore(t, 'access-other');
});
afterAll(() => t.close());

describe('bad input to POST /orders', () => {
  it('requires an Idempotency-Key', async () => {
    const cart = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const answer = await send(t.app, 'POST', '/api/v1/orders', cart, { payment: { token: 'tok_visa' } });
    expect(answer.statusCode).toBe(400);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REQUIRED' });
  });

  it('names every bad field, and never takes a card number or unknown fields', async () => {
    const cart = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const answer = await send(
      t.app,
      'POST',
      '/api/v1/orders',
      { ...cart, 'idempotency-key': 'bad-1' },
      {
        payment: { token: '4242 4242 4242 4242', cvc: '123' },
        cartId: 'not-a-uuid',
        extra: true,
      },
    );
    expect(answer.statusCode).toBe(400);
    expect(answer.json().code).toBe('VALIDATION_FAILED');
    const pointers = answer.json<{ errors: { pointer: string }[] }>().errors.map((e) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/payment/token', '/cartId']));
  });

  it('refuses a payment provider Mercato does not have with 400 naming it, creating no order', async () => {
    const cart = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const count = async () =>
      (await send(t.app, 'GET', '/api/v1/orders?limit=100', shop.staff)).json<{ items: unknown[] }>().items
        .length;
    const before = await count();
    const answer = await send(
      t.app,
      'POST',
      '/api/v1/orders',
      { ...cart, 'idempotency-key': 'stripe-1' },
      { payment: { provider: 'stripe', token: 'tok_visa' } },
    );
    expect(answer.statusCode, answer.body).toBe(400);
    expect(answer.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ pointer: '/payment/provider' }],
    });
    expect(await count()).toBe(before);
  });

  it('refuses an empty cart and a cart without a shipping address with 422 CHECKOUT_INVALID, creating no order', async () => {
    const { headers } = await newGuestCart(t, shop, { currency: 'EUR' });
    const empty = await placeOrder(t, headers);
    expect(empty.statusCode, empty.body).toBe(422);
    expect(empty.json()).toMatchObject({ code: 'CHECKOUT_INVALID' });
    const added = await send(t.app, 'POST', '/api/v1/cart/items', headers, {
      variantId: (await product(t, shop)).id,
      quantity: 1,
    });
    expect(added.statusCode).toBeLessThan(300);
    const unaddressed = await placeOrder(t, headers);
    expect(unaddressed.statusCode).toBe(422);
    expect(unaddressed.json().detail).toContain('shipping address');
    const orders = await send(t.app, 'GET', '/api/v1/orders', shop.staff);
    expect(orders.json<{ items: unknown[] }>().items).toHaveLength(0);
  });

  it('refuses a cart with nothing to pay with 422 CHECKOUT_INVALID, creating no order', async () => {
    const free = await createSellable(t, shop, { prices: { EUR: 0 }, onHand: 5 });
    const { headers } = await newGuestCart(t, shop, { currency: 'EUR' });
    const added = await send(t.app, 'POST', '/api/v1/cart/items', headers, {
      variantId: free.id,
      quantity: 1,
    });
    expect(added.statusCode, added.body).toBeLessThan(300);
    const addressed = await send(t.app, 'PUT', '/api/v1/cart/addresses', headers, { shipping: BERLIN });
    expect(addressed.json()).toMatchObject({ totals: { total: 0 } });
    const answer = await placeOrder(t, headers);
    expect(answer.statusCode, answer.body).toBe(422);
    expect(answer.json()).toMatchObject({ code: 'CHECKOUT_INVALID' });
    expect(answer.json().detail).toContain('nothing to pay');
    const orders = await send(t.app, 'GET', '/api/v1/orders?limit=100', shop.staff);
    expect(orders.json<{ items: Order[] }>().items.filter((o) => o.totals.total === 0)).toHaveLength(0);
  });

  it('refuses a key used again with another body with 409 IDEMPOTENCY_KEY_REUSED', async () => {
    const cart = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    expect((await placeOrder(t, cart, 'tok_visa', 'reused-key')).statusCode).toBe(201);
    const again = await placeOrder(t, cart, 'tok_visa', 'reused-key', { email: 'someone@example.com' });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('names cartId (400 VALIDATION_FAILED listing it) when staff check out without naming the cart', async () => {
    const answer = await send(
      t.app,
      'POST',
      '/api/v1/orders',
      { ...shop.staff, 'idempotency-key': 'staff-no-cart' },
      { payment: { token: 'tok_visa' } },
    );
    expect(answer.statusCode, answer.body).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ pointer: '/cartId' }] });
  });

  it("checks out only the shopper's own cart: another cart id is 404", async () => {
    const mine = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const theirs = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const theirCart = (await send(t.app, 'GET', '/api/v1/cart', theirs)).json<{ id: string }>();
    const answer = await placeOrder(t, mine, 'tok_visa', undefined, { cartId: theirCart.id });
    expect(answer.statusCode).toBe(404);
  });
});

describe('who may do what', () => {
  let order: Order;
  let owner: Record<string, string>;

  beforeAll(async () => {
    owner = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }], owner);
    const placed = await placeOrder(t, owner);
    expect(placed.statusCode, placed.body).toBe(201);
    order = placed.json<Order>();
  });

  it("answers 404 to another tenant's staff on every route with an order id", async () => {
    for (const [method, path, body] of [
      ['PUT', `/api/v1/orders/${order.id}/cancel`, {}],
      ['PUT', `/api/v1/orders/${order.id}/status`, { status: 'cancelled' }],
      ['GET', `/api/v1/orders/${order.id}/saga`, undefined],
    ] as const) {
      const answer = await send(t.app, method, path, other.staff, body);
      expect(answer.statusCode, `${method} ${path}`).toBe(404);
    }
    expect((await send(t.app, 'GET', `/api/v1/orders/${order.id}`, shop.staff)).json<Order>().status).toBe(
      'completed',
    );
  });

  it("lets no customer cancel another's order, and no customer read a saga", async () => {
    const stranger = await newCustomer(t, shop);
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, stranger, {});
    expect(cancel.statusCode).toBe(404);
    const saga = await send(t.app, 'GET', `/api/v1/orders/${order.id}/saga`, owner);
    expect(saga.statusCode).toBe(403);
    const status = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/status`, owner, {
      status: 'cancelled',
    });
    expect(status.statusCode).toBe(403);
    const anonymous = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, {}, {});
    expect(anonymous.statusCode).toBe(401);
  });

  it('refuses an illegal status change by staff with 409 naming both states', async () => {
    const answer = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/status`, shop.staff, {
      status: 'payment_processing',
    });
    expect(answer.statusCode).toBe(409);
    expect(answer.json()).toMatchObject({
      code: 'ILLEGAL_TRANSITION',
      from: 'completed',
      to: 'payment_processing',
    });
  });
});

describe('orders staff place from explicit lines', () => {
  const body = (variantId: string, extra: Record<string, unknown> = {}) => ({
    lines: [{ variantId, quantity: 2 }],
    currency: 'EUR',
    shippingAddress: {
      recipient: 'Erika Muster',
      line1: 'Unter den Linden 1',
      city: 'Berlin',
      postalCode: '10117',
      country: 'DE',
    },
    shippingOptionId: shop.shippingOptionId,
    email: 'phone-order@example.com',
    payment: { token: 'tok_visa' },
    ...extra,
  });
  const post = (headers: Record<string, string>, payload: unknown, key: string) =>
    send(t.app, 'POST', '/api/v1/orders', { ...headers, 'idempotency-key': key }, payload);

  it('prices, taxes and ships them as the storefront would, and completes the order', async () => {
    const item = await product(t, shop, 10);
    const answer = await post(shop.staff, body(item.id), 'phone-1');
    expect(answer.statusCode, answer.body).toBe(201);
    expect(answer.json<Order>()).toMatchObject({
      status: 'completed',
      customerId: null,
      email: 'phone-order@example.com',
      totals: { subtotal: 2000, tax: 380, shipping: 490, total: 2870 },
    });
    const replay = await post(shop.staff, body(item.id), 'phone-1');
    expect(replay.json<Order>().id).toBe(answer.json<Order>().id);
    const stock = await send(t.app, 'GET', `/api/v1/inventory?variantId=${item.id}`, shop.staff);
    expect(stock.json<{ items: { onHand: number }[] }>().items[0]!.onHand).toBe(8);
  });

  it('takes lines from an API key with orders:write, as from staff (an integration placing orders)', async () => {
    const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const created = await send(t.app, 'POST', '/api/v1/api-keys', admin, {
      name: 'marketplace connector',
      permissions: ['orders:write', 'orders:read'],
    });
    expect(created.statusCode, created.body).toBe(201);
    const key = { 'x-api-key': created.json<{ key: string }>().key };
    const item = await product(t, shop, 10);
    const answer = await post(key, body(item.id), 'connector-1');
    expect(answer.statusCode, answer.body).toBe(201);
    expect(answer.json<Order>()).toMatchObject({ status: 'completed', customerId: null });
    const replay = await post(key, body(item.id), 'connector-1');
    expect(replay.json<Order>().id).toBe(answer.json<Order>().id);
  });

  it('refuses lines from a shopper, lines with a cart, and names a bad address field', async () => {
    const item = await product(t, shop, 10);
    const customer = await newCustomer(t, shop);
    expect((await post(customer, body(item.id), 'phone-2')).statusCode).toBe(403);
    const both = await post(shop.staff, body(item.id, { cartId: item.id }), 'phone-3');
    expect(both.statusCode).toBe(400);
    const noCurrency = await post(shop.staff, body(item.id, { currency: undefined }), 'phone-4');
    expect(noCurrency.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ pointer: '/currency' }],
    });
    const badAddress = await post(
      shop.staff,
      body(item.id, {
        shippingAddress: { recipient: 'X', line1: 'Y', city: 'Z', postalCode: '1', country: 'DE' },
      }),
      'phone-5',
    );
    expect(badAddress.statusCode).toBe(400);
    expect(badAddress.json<{ errors: { pointer: string }[] }>().errors.map((e) => e.pointer)).toContain(
      '/shippingAddress/postalCode',
    );
    const stray = await placeOrder(
      t,
      await readyCart(t, shop, [{ variant: item, quantity: 1 }]),
      'tok_visa',
      'phone-6',
      {
        currency: 'EUR',
      },
    );
    expect(stray.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ pointer: '/currency' }] });
  });

  it('answers a null address or an address book id with 400 naming the field, drafting no cart', async () => {
    const item = await product(t, shop, 10);
    const carts = async () =>
      Number(
        (
          await withSystem(t.ctx.db.kysely, (trx) =>
            sql<{
              n: number;
            }>`select count(*)::int as n from cart.carts where tenant_id = ${shop.id}`.execute(trx),
          )
        ).rows[0]!.n,
      );
    const before = await carts();
    const none = await post(shop.staff, body(item.id, { shippingAddress: null }), 'phone-7');
    expect(none.statusCode, none.body).toBe(400);
    expect(none.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ pointer: '/shippingAddress' }],
    });
    const addressId = '0190a0a0-0000-7000-8000-000000000000';
    for (const field of ['shippingAddress', 'billingAddress']) {
      const booked = await post(shop.staff, body(item.id, { [field]: { addressId } }), `phone-8-${field}`);
      // The staff user is signed in: a 401 would send them to log in again.
      expect(booked.statusCode, booked.body).toBe(400);
      expect(booked.json()).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ pointer: `/${field}/addressId` }],
      });
    }
    expect(await carts()).toBe(before);
    // A line refused after the draft was made (an unknown variant) leaves no half-filled draft.
    const unknown = await post(
      shop.staff,
      {
        ...body(item.id),
        lines: [
          { variantId: item.id, quantity: 1 },
          { variantId: addressId, quantity: 1 },
        ],
      },
      'phone-9',
    );
    expect(unknown.statusCode, unknown.body).toBe(404);
    expect(await carts()).toBe(before);
  });
});
