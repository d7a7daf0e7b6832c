import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BERLIN } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
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
let other: Shop;

beforeAll(async () => {
  t = await startCartApp();
  shop = await createShop(t, 'optiondelete');
  other = await createShop(t, 'optionother');
});
afterAll(() => t.close());

async function option(s: Shop, name: string) {
  const response = await send(t.app, 'POST', '/api/v1/shipping-options', s.staff, {
    name,
    countries: ['DE'],
    prices: { EUR: 490 },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string }>().id;
}

/** A cart (a guest's, or the customer's the headers name) of one item shipped to Berlin with the option. */
async function cartShippedWith(s: Shop, optionId: string, customer?: Record<string, string>) {
  const headers = customer ?? (await newGuestCart(t, s)).headers;
  const item = await createSellable(t, s, { prices: { EUR: 1000 } });
  expect((await addItem(t, headers, { variantId: item.id, quantity: 1 })).statusCode).toBe(201);
  expect((await send(t.app, 'PUT', '/api/v1/cart/addresses', headers, { shipping: BERLIN })).statusCode).toBe(
    200,
  );
  const chosen = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
    shippingOptionId: optionId,
  });
  expect(chosen.statusCode, chosen.body).toBe(200);
  return headers;
}

/** Every cart row's version (xmin changes whenever a statement rewrites the row), of every tenant. */
const cartVersions = () =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ id: string; version: string }>`
      select id, xmin::text as version from cart.carts order by id`.execute(trx);
    return rows;
  });

describe('deleting a shipping option', () => {
  it("writes no cart of any tenant (no scan of every tenant's carts); carts that chose it read without it", async () => {
    const doomed = await option(shop, 'Doomed');
    const kept = await option(shop, 'Kept');
    const chose = await cartShippedWith(shop, doomed);
    const keeps = await cartShippedWith(shop, kept);
    await cartShippedWith(other, await option(other, 'Elsewhere'));
    const before = await cartVersions();

    const deleted = await send(t.app, 'DELETE', `/api/v1/shipping-options/${doomed}`, shop.staff);
    expect(deleted.statusCode, deleted.body).toBe(204);
    // The delete touched no cart, not even the one that chose the option: reads drop it.
    expect(await cartVersions()).toEqual(before);

    const read = await send(t.app, 'GET', '/api/v1/cart', chose);
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json<CartBody>()).toMatchObject({
      shippingOption: null,
      totals: { shipping: 0, total: 1000 },
    });
    expect((await send(t.app, 'GET', '/api/v1/cart', keeps)).json<CartBody>().shippingOption).toMatchObject({
      id: kept,
    });
    const again = await send(t.app, 'DELETE', `/api/v1/shipping-options/${doomed}`, shop.staff);
    expect(again.statusCode).toBe(404);
    expect(again.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it("lets a merge give the customer the guest's option when the customer's was deleted", async () => {
    const gone = await option(shop, 'Gone');
    const guestOption = await option(shop, 'Guest choice');
    const customer = await newCustomer(t, shop);
    await cartShippedWith(shop, gone, customer);
    const guest = await cartShippedWith(shop, guestOption);
    expect((await send(t.app, 'DELETE', `/api/v1/shipping-options/${gone}`, shop.staff)).statusCode).toBe(
      204,
    );

    const merged = await send(t.app, 'POST', '/api/v1/cart/merge', {
      ...customer,
      'x-cart-token': guest['x-cart-token']!,
    });
    expect(merged.statusCode, merged.body).toBe(200);
    expect(merged.json<{ cart: CartBody }>().cart.shippingOption).toMatchObject({ id: guestOption });
  });
});
