import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addItem,
  type CartBody,
  type CartTestApp,
  createSellable,
  createShop,
  newGuestCart,
  type Shop,
  send,
  startCartApp,
} from './cart-test-fixtures.ts';

let t: CartTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCartApp();
  shop = await createShop(t, 'regionshop');
});
afterAll(() => t.close());

async function taxRate(body: Record<string, unknown>) {
  const response = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, body);
  expect(response.statusCode, response.body).toBe(201);
}

/** The tax rate a guest cart in USD gets for a shipping address in this country and region. */
async function rateFor(country: string, region: string, postalCode: string): Promise<number> {
  const variant = await createSellable(t, shop, { prices: { USD: 1000 } });
  const { headers } = await newGuestCart(t, shop, { currency: 'USD' });
  await addItem(t, headers, { variantId: variant.id, quantity: 1 });
  const shipping = { recipient: 'Ann', line1: '1 Main St', city: 'City', region, postalCode, country };
  const response = await send(t.app, 'PUT', '/api/v1/cart/addresses', headers, { shipping });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<CartBody>().totals.taxRateBps;
}

describe("a region's tax rate", () => {
  it('applies to an address naming the region as the rate does, whatever letters its case folds', async () => {
    await taxRate({ country: 'TR', rateBps: 2000, name: 'KDV' });
    await taxRate({ country: 'TR', region: 'İstanbul', rateBps: 1800, name: 'İstanbul' });
    // JavaScript lowers 'İ' to 'i̇', PostgreSQL to 'i': the same region must still match.
    expect(await rateFor('TR', 'İstanbul', '34000')).toBe(1800);
    expect(await rateFor('TR', 'İSTANBUL', '34000')).toBe(1800);
    expect(await rateFor('TR', 'Ankara', '06000')).toBe(2000);
  });

  it('applies to an address whose region has spaces around it', async () => {
    await taxRate({ country: 'US', region: 'CA', rateBps: 725, name: 'California' });
    expect(await rateFor('US', ' ca ', '94105')).toBe(725);
    expect(await rateFor('US', 'NY', '10001')).toBe(0);
  });

  it('is stored without spaces around its region, so a second rate for it is a conflict and a blank one is refused', async () => {
    const created = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
      country: 'US',
      region: ' WA ',
      rateBps: 650,
      name: 'Washington',
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ region: 'WA' });
    const twin = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
      country: 'US',
      region: 'wa ',
      rateBps: 100,
      name: 'again',
    });
    expect(twin.statusCode).toBe(409);
    const blank = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
      country: 'US',
      region: '  ',
      rateBps: 100,
      name: 'blank',
    });
    expect(blank.statusCode).toBe(400);
    expect(blank.json().errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/region']);
    const id = created.json<{ id: string }>().id;
    const moved = await send(t.app, 'PUT', `/api/v1/tax-rates/${id}`, shop.staff, { region: ' OR ' });
    expect(moved.json()).toMatchObject({ region: 'OR' });
  });
});
