import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CheckoutTestApp,
  confirmPending,
  createStore,
  placeOrder,
  product,
  readyCart,
  settled,
  startCheckoutApp,
} from '../checkout/checkout-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { addItem, type CartBody, newCustomer, send } from './cart-test-fixtures.ts';

type Store = Awaited<ReturnType<typeof createStore>>;

let t: CheckoutTestApp;
let shop: Store;

beforeAll(async () => {
  // The test provider answers tok_pending "pending" (a 3-D Secure redirect): the order waits for
  // its webhook, while the shopper keeps using the cart.
  t = await startCheckoutApp({ MERCATO_CHECKOUT_PENDING_TIMEOUT_MS: '60000' });
  shop = await createStore(t, 'aftercheckout');
});
afterAll(() => t?.close());

const getCart = (headers: Record<string, string>) => send(t.app, 'GET', '/api/v1/cart', headers);

/** Places a pending order of the cart the headers name; returns the order once it completed. */
async function completeLater(headers: Record<string, string>, meanwhile: () => Promise<void>) {
  const placed = await placeOrder(t, headers, 'tok_pending');
  expect(placed.statusCode, placed.body).toBe(202);
  const order = placed.json<Order>();
  await meanwhile();
  await confirmPending(t, shop.id, order.id);
  expect(await settled(t, shop, order.id)).toMatchObject({ status: 'completed' });
  return order;
}

describe('a cart whose order completes after the shopper used it again', () => {
  it("keeps what a guest added while the order's payment was pending; the ordered units go", async () => {
    const ordered = await product(t, shop, 20);
    const later = await product(t, shop, 20);
    const headers = await readyCart(t, shop, [{ variant: ordered, quantity: 2 }]);
    await completeLater(headers, async () => {
      expect((await addItem(t, headers, { variantId: later.id, quantity: 1 })).statusCode).toBe(201);
      expect((await addItem(t, headers, { variantId: ordered.id, quantity: 3 })).statusCode).toBe(201);
    });
    const cart = await getCart(headers);
    expect(cart.statusCode, cart.body).toBe(200);
    const lines = cart.json<CartBody>().lines.map((l) => [l.variantId, l.quantity]);
    expect(lines.sort()).toEqual(
      [
        [ordered.id, 3],
        [later.id, 1],
      ].sort(),
    );
  });

  it("keeps the guest cart a customer merged into their cart while its order's payment was pending", async () => {
    const ordered = await product(t, shop, 20);
    const guestItem = await product(t, shop, 20);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: ordered, quantity: 1 }], customer);
    await completeLater(customer, async () => {
      const guest = await send(t.app, 'POST', '/api/v1/cart', { 'x-tenant': shop.slug }, {});
      const token = guest.json<{ token: string }>().token;
      const guestHeaders = { 'x-tenant': shop.slug, 'x-cart-token': token };
      expect((await addItem(t, guestHeaders, { variantId: guestItem.id, quantity: 2 })).statusCode).toBe(201);
      const merged = await send(t.app, 'POST', '/api/v1/cart/merge', { ...customer, 'x-cart-token': token });
      expect(merged.statusCode, merged.body).toBe(200);
    });
    const cart = await getCart(customer);
    expect(cart.statusCode, cart.body).toBe(200);
    expect(cart.json<CartBody>().lines.map((l) => [l.variantId, l.quantity])).toEqual([[guestItem.id, 2]]);
  });

  it("merges into the customer's cart none of the units a guest's pending order took: they are not ordered twice", async () => {
    const ordered = await product(t, shop, 20);
    const extra = await product(t, shop, 20);
    const guest = await readyCart(t, shop, [
      { variant: ordered, quantity: 2 },
      { variant: extra, quantity: 1 },
    ]);
    const customer = await newCustomer(t, shop);
    // The customer's own cart already holds one unit of the ordered variant.
    expect((await addItem(t, customer, { variantId: ordered.id, quantity: 1 })).statusCode).toBe(201);
    await completeLater(guest, async () => {
      // While the order waits for its payment, the guest adds more and then logs in.
      expect((await addItem(t, guest, { variantId: ordered.id, quantity: 1 })).statusCode).toBe(201);
      const merged = await send(t.app, 'POST', '/api/v1/cart/merge', {
        ...customer,
        'x-cart-token': guest['x-cart-token']!,
      });
      expect(merged.statusCode, merged.body).toBe(200);
      const body = merged.json<{ cart: CartBody; adjustments: { variantId: string; reason: string }[] }>();
      const lines = body.cart.lines.map((l) => [l.variantId, l.quantity]);
      expect(lines).toEqual([[ordered.id, 2]]);
      expect(body.adjustments.map((a) => [a.variantId, a.reason]).sort()).toEqual(
        [
          [ordered.id, 'CHECKED_OUT'],
          [extra.id, 'CHECKED_OUT'],
        ].sort(),
      );
    });
    const cart = await getCart(customer);
    expect(cart.statusCode, cart.body).toBe(200);
    // Their own unit and the one the guest added after ordering; the two ordered are in the order.
    expect(cart.json<CartBody>().lines.map((l) => [l.variantId, l.quantity])).toEqual([[ordered.id, 2]]);
    // The guest cart held only what the order took: its completion took it away.
    expect((await getCart(guest)).statusCode).toBe(404);
  });

  it('is deleted when the shopper left it as it was ordered', async () => {
    const ordered = await product(t, shop, 20);
    const headers = await readyCart(t, shop, [{ variant: ordered, quantity: 2 }]);
    await completeLater(headers, async () => {
      // A read is no change.
      expect((await getCart(headers)).statusCode).toBe(200);
    });
    expect((await getCart(headers)).statusCode).toBe(404);
  });
});
