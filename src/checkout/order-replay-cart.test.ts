import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addItem, type CartBody, newCustomer, send } from '../cart/cart-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import {
  type CheckoutTestApp,
  confirmPending,
  createStore,
  placeOrder,
  product,
  readyCart,
  settled,
  startCheckoutApp,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  // tok_pending: the order waits for its webhook while the shopper uses the cart again.
  t = await startCheckoutApp({ MERCATO_CHECKOUT_PENDING_TIMEOUT_MS: '60000' });
  shop = await createStore(t, 'replaycart');
});
afterAll(() => t?.close());

describe('a replay of an order’s Idempotency-Key while its payment is pending', () => {
  it('answers the order and leaves what the shopper added since in the cart once it completes', async () => {
    const ordered = await product(t, shop, 20);
    const later = await product(t, shop, 20);
    const headers = await readyCart(t, shop, [{ variant: ordered, quantity: 2 }]);
    const key = `replay-${Date.now()}`;
    const placed = await placeOrder(t, headers, 'tok_pending', key);
    expect(placed.statusCode, placed.body).toBe(202);
    const order = placed.json<Order>();
    expect((await addItem(t, headers, { variantId: later.id, quantity: 1 })).statusCode).toBe(201);
    // The client retries (its answer was lost): the same order, and the cart read for it is no
    // new checkout of what is in the cart now.
    const replayed = await placeOrder(t, headers, 'tok_pending', key);
    expect(replayed.json<Order>().id).toBe(order.id);
    await confirmPending(t, shop.id, order.id);
    expect(await settled(t, shop, order.id)).toMatchObject({ status: 'completed' });
    const cart = await send(t.app, 'GET', '/api/v1/cart', headers);
    expect(cart.statusCode, cart.body).toBe(200);
    expect(cart.json<CartBody>().lines.map((l) => [l.variantId, l.quantity])).toEqual([[later.id, 1]]);
  });
});

describe('a cart whose order failed', () => {
  it('merges whole into the customer’s cart at login: the failed order holds back none of its units', async () => {
    const ordered = await product(t, shop, 20);
    const guest = await readyCart(t, shop, [{ variant: ordered, quantity: 2 }]);
    const placed = await placeOrder(t, guest, 'tok_card_declined');
    expect(placed.statusCode, placed.body).toBe(402);
    const { orderId } = placed.json<{ orderId: string }>();
    expect(await settled(t, shop, orderId)).toMatchObject({ status: 'failed' });
    const customer = await newCustomer(t, shop);
    const merged = await send(t.app, 'POST', '/api/v1/cart/merge', {
      ...customer,
      'x-cart-token': guest['x-cart-token']!,
    });
    expect(merged.statusCode, merged.body).toBe(200);
    const body = merged.json<{ cart: CartBody; adjustments: unknown[] }>();
    expect(body.cart.lines.map((l) => [l.variantId, l.quantity])).toEqual([[ordered.id, 2]]);
    expect(body.adjustments).toEqual([]);
  });
});
