import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addItem,
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
  shop = await createShop(t, 'currencyshop');
});
afterAll(() => t.close());

const notIso = {
  code: 'VALIDATION_FAILED',
  errors: [{ in: 'body', pointer: '/currency', message: 'is not an ISO 4217 currency code' }],
};

describe('a cart currency that is not ISO 4217', () => {
  it('is refused when a guest or a customer starts a cart, and no cart takes it', async () => {
    const guest = await send(t.app, 'POST', '/api/v1/cart', { 'x-tenant': shop.slug }, { currency: 'ZZZ' });
    expect(guest.statusCode).toBe(400);
    expect(guest.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(guest.json()).toMatchObject(notIso);
    expect(guest.headers['x-cart-token']).toBeUndefined();

    const customer = await newCustomer(t, shop);
    const mine = await send(t.app, 'POST', '/api/v1/cart', customer, { currency: 'QQQ' });
    expect(mine.statusCode).toBe(400);
    expect(mine.json()).toMatchObject(notIso);
    expect((await send(t.app, 'GET', '/api/v1/cart', customer)).statusCode).toBe(404);
  });

  it('is refused on an add, and the cart keeps the currency it had', async () => {
    const variant = await createSellable(t, shop, { prices: { EUR: 500 } });
    const { headers } = await newGuestCart(t, shop);
    const refused = await addItem(t, headers, { variantId: variant.id, quantity: 1, currency: 'ABC' });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject(notIso);
    expect((await send(t.app, 'GET', '/api/v1/cart', headers)).json()).toMatchObject({
      currency: null,
      lines: [],
    });
    const added = await addItem(t, headers, { variantId: variant.id, quantity: 1 });
    expect(added.json()).toMatchObject({ currency: 'EUR', itemCount: 1 });
  });
});
