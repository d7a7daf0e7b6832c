import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  startCartApp,
} from './cart-test-fixtures.ts';

let t: CartTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCartApp();
  shop = await createShop(t, 'nostoreshop');
});
afterAll(() => t.close());

const ADDRESS = {
  recipient: 'Erika Muster',
  line1: 'Unter den Linden 1',
  city: 'Berlin',
  postalCode: '10117',
  country: 'DE',
  phone: '+4930123456',
};

describe("answers holding a shopper's cart", () => {
  // A guest names their cart with X-Cart-Token, which no cache keys on, and sends no
  // Authorization or Cookie: a shared cache in front of the API (Varnish's default rules store a
  // GET's 200 without Cache-Control for two minutes) would answer the next shopper's GET /cart
  // with this one's name, address and phone.
  it('tell every cache not to store them, for guests and customers alike', async () => {
    const variant = await createSellable(t, shop);
    const { headers, token } = await newGuestCart(t, shop);
    const answers = {
      add: await addItem(t, headers, { variantId: variant.id, quantity: 1 }),
      address: await send(t.app, 'PUT', '/api/v1/cart/addresses', headers, { shipping: ADDRESS }),
      read: await send(t.app, 'GET', '/api/v1/cart', headers),
      options: await send(t.app, 'GET', '/api/v1/cart/shipping-options', headers),
      missing: await send(t.app, 'GET', '/api/v1/cart', { 'x-tenant': shop.slug }),
    };
    expect(answers.read.json<CartBody>().shippingAddress).toMatchObject({ phone: ADDRESS.phone });
    const customer = await newCustomer(t, shop);
    const customerAnswers = {
      add: await addItem(t, customer, { variantId: variant.id, quantity: 1 }),
      merge: await send(t.app, 'POST', '/api/v1/cart/merge', { ...customer, 'x-cart-token': token }),
      read: await send(t.app, 'GET', '/api/v1/cart', customer),
    };
    const all = {
      ...answers,
      ...Object.fromEntries(Object.entries(customerAnswers).map(([k, v]) => [`customer ${k}`, v])),
    };
    const statuses = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.statusCode]));
    expect(statuses).toEqual({
      add: 201,
      address: 200,
      read: 200,
      options: 200,
      missing: 404,
      'customer add': 201,
      'customer merge': 200,
      'customer read': 200,
    });
    const caching = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.headers['cache-control']]));
    expect(caching).toEqual(Object.fromEntries(Object.keys(all).map((k) => [k, 'no-store'])));
  });
});
