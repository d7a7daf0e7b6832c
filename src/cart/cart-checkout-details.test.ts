import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  shop = await createShop(t, 'detailshop');
  other = await createShop(t, 'detailother');
});
afterAll(() => t.close());

const berlin = {
  recipient: 'Erika Muster',
  line1: 'Unter den Linden 1',
  city: 'Berlin',
  postalCode: '10117',
  country: 'de',
};
const pointers = (body: { errors: { pointer: string }[] }) => body.errors.map((e) => e.pointer).sort();
const putAddresses = (headers: Record<string, string>, body: unknown) =>
  send(t.app, 'PUT', '/api/v1/cart/addresses', headers, body);

async function shippingOption(s: Shop, body: Record<string, unknown>) {
  const response = await send(t.app, 'POST', '/api/v1/shipping-options', s.staff, body);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string }>();
}

async function taxRate(s: Shop, body: Record<string, unknown>) {
  const response = await send(t.app, 'POST', '/api/v1/tax-rates', s.staff, body);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string }>();
}

describe('addresses', () => {
  it('takes an inline address, checked and made canonical as the address book does', async () => {
    const { headers } = await newGuestCart(t, shop);
    const set = await putAddresses(headers, {
      shipping: { ...berlin, country: 'de' },
      billing: { ...berlin, postalCode: '10117' },
    });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json<CartBody>().shippingAddress).toMatchObject({
      country: 'DE',
      postalCode: '10117',
      addressId: null,
      line2: null,
    });
    expect(set.json<CartBody>().billingAddress).toMatchObject({ city: 'Berlin' });
    const cleared = await putAddresses(headers, { billing: null });
    expect(cleared.json<CartBody>()).toMatchObject({
      billingAddress: null,
      shippingAddress: { city: 'Berlin' },
    });
  });

  it('answers 400 naming every bad field of inline addresses', async () => {
    const { headers } = await newGuestCart(t, shop);
    const { line1: _drop, ...noLine1 } = berlin;
    const bad = await putAddresses(headers, {
      shipping: { ...berlin, postalCode: '1234' },
      billing: { ...noLine1, country: 'ZZ' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('VALIDATION_FAILED');
    expect(pointers(bad.json())).toEqual(['/billing/country', '/billing/line1', '/shipping/postalCode']);
    const extra = await putAddresses(headers, { shipping: { ...berlin, colour: 'red' } });
    expect(pointers(extra.json())).toEqual(['/shipping/colour']);
    const badId = await putAddresses(headers, { shipping: { addressId: 'nope' } });
    expect(pointers(badId.json())).toEqual(['/shipping/addressId']);
    expect((await putAddresses(headers, { delivery: berlin })).statusCode).toBe(400);
    expect((await putAddresses(headers, { shipping: 'Berlin' })).statusCode).toBe(400);
  });

  it("copies an address from the signed-in customer's address book; another's is 404, a guest's 401", async () => {
    const customer = await newCustomer(t, shop);
    const saved = await send(t.app, 'POST', '/api/v1/users/addresses', customer, {
      type: 'SHIPPING',
      ...berlin,
      region: 'BE',
    });
    expect(saved.statusCode).toBe(201);
    const addressId = saved.json<{ id: string }>().id;
    await send(t.app, 'POST', '/api/v1/cart', customer, {});
    const set = await putAddresses(customer, { shipping: { addressId }, billing: { addressId } });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json<CartBody>().shippingAddress).toMatchObject({ addressId, region: 'BE', country: 'DE' });
    const stranger = await newCustomer(t, shop);
    await send(t.app, 'POST', '/api/v1/cart', stranger, {});
    expect((await putAddresses(stranger, { shipping: { addressId } })).statusCode).toBe(404);
    const foreigner = await newCustomer(t, other);
    await send(t.app, 'POST', '/api/v1/cart', foreigner, {});
    expect((await putAddresses(foreigner, { shipping: { addressId } })).statusCode).toBe(404);
    const guest = await newGuestCart(t, shop);
    expect((await putAddresses(guest.headers, { shipping: { addressId } })).statusCode).toBe(401);
  });
});

describe('shipping options', () => {
  it('staff manage them; shoppers see those for their country and currency, and the choice sets shipping', async () => {
    const germany = await shippingOption(shop, {
      name: 'DHL',
      countries: ['de', 'AT'],
      prices: { EUR: 495 },
    });
    const express = await shippingOption(shop, {
      name: 'Express',
      countries: ['DE'],
      prices: { EUR: 1500, USD: 1800 },
    });
    await shippingOption(shop, { name: 'Old', countries: ['DE'], prices: { EUR: 100 }, active: false });
    const france = await shippingOption(shop, { name: 'Colissimo', countries: ['FR'], prices: { EUR: 700 } });
    const listed = await send(t.app, 'GET', '/api/v1/shipping-options', shop.staff);
    expect(listed.json().items).toHaveLength(4);
    expect(listed.json().items[0]).toMatchObject({ name: 'DHL', countries: ['DE', 'AT'], active: true });

    const variant = await createSellable(t, shop, { prices: { EUR: 2000 } });
    const { headers } = await newGuestCart(t, shop);
    await addItem(t, headers, { variantId: variant.id, quantity: 1 });
    const before = await send(t.app, 'GET', '/api/v1/cart/shipping-options', headers);
    expect(before.json().items).toEqual([]);
    const noCart = { ...headers, 'x-cart-token': `ct_${'a'.repeat(43)}` };
    expect((await send(t.app, 'GET', '/api/v1/cart/shipping-options', noCart)).statusCode).toBe(404);
    const early = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
      shippingOptionId: germany.id,
    });
    expect(early.statusCode).toBe(409);

    await putAddresses(headers, { shipping: berlin });
    const options = await send(t.app, 'GET', '/api/v1/cart/shipping-options', headers);
    expect(options.json().items.map((o: { name: string; price: number }) => [o.name, o.price])).toEqual([
      ['DHL', 495],
      ['Express', 1500],
    ]);
    const chosen = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
      shippingOptionId: germany.id,
    });
    expect(chosen.json<CartBody>()).toMatchObject({
      shippingOption: { id: germany.id, name: 'DHL', price: 495 },
      totals: { subtotal: 2000, shipping: 495, total: 2495 },
    });
    const wrongCountry = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
      shippingOptionId: france.id,
    });
    expect(wrongCountry.statusCode).toBe(409);
    const faster = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
      shippingOptionId: express.id,
    });
    expect(faster.json<CartBody>().totals).toMatchObject({ shipping: 1500, total: 3500 });

    // A price change by staff shows at once; moving to a country the option does not serve drops it.
    await send(t.app, 'PUT', `/api/v1/shipping-options/${express.id}`, shop.staff, { prices: { EUR: 1200 } });
    expect((await send(t.app, 'GET', '/api/v1/cart', headers)).json<CartBody>().totals.shipping).toBe(1200);
    const moved = await putAddresses(headers, {
      shipping: { ...berlin, country: 'FR', postalCode: '75001', city: 'Paris' },
    });
    expect(moved.json<CartBody>()).toMatchObject({
      shippingOption: null,
      totals: { shipping: 0, total: 2000 },
    });
    const none = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
      shippingOptionId: null,
    });
    expect(none.statusCode).toBe(200);

    // Deleting an option takes it out of carts that chose it.
    await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, { shippingOptionId: france.id });
    expect(
      (await send(t.app, 'DELETE', `/api/v1/shipping-options/${france.id}`, shop.staff)).statusCode,
    ).toBe(204);
    expect((await send(t.app, 'GET', '/api/v1/cart', headers)).json<CartBody>().shippingOption).toBeNull();
  });

  it('refuses bad options and strangers', async () => {
    const bad = await send(t.app, 'POST', '/api/v1/shipping-options', shop.staff, {
      name: '',
      countries: ['XX', 'DE', 'de'],
      prices: { EURO: 1, XYZ: 2, EUR: -1 },
    });
    expect(bad.statusCode).toBe(400);
    const customer = await newCustomer(t, shop);
    expect((await send(t.app, 'GET', '/api/v1/shipping-options', customer)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', '/api/v1/shipping-options', {})).statusCode).toBe(401);
    const unknownCurrency = await send(t.app, 'POST', '/api/v1/shipping-options', shop.staff, {
      name: 'X',
      countries: ['DE'],
      prices: { XYZ: 2 },
    });
    expect(pointers(unknownCurrency.json())).toEqual(['/prices/XYZ']);
    const twice = await send(t.app, 'POST', '/api/v1/shipping-options', shop.staff, {
      name: 'X',
      countries: ['DE', 'de'],
      prices: { EUR: 2 },
    });
    expect(pointers(twice.json())).toEqual(['/countries']);
    const huge = await send(t.app, 'POST', '/api/v1/shipping-options', shop.staff, {
      name: 'X',
      countries: ['DE'],
      prices: { EUR: 1e13 },
    });
    expect(huge.statusCode).toBe(400);
    expect(pointers(huge.json())).toEqual(['/prices/EUR']);
  });

  it('keeps a store to 200 shipping options, even when they are created at once', async () => {
    const full = await createShop(t, 'detailfull');
    // 198 made directly (fast), then four at once for the last two places.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`insert into cart.shipping_options (id, tenant_id, name, countries, prices)
          select gen_random_uuid(), ${full.id}, 'Bulk ' || g, array['DE'], '{"EUR": 1}'::jsonb
          from generate_series(1, 198) g`.execute(trx),
    );
    const answers = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        send(t.app, 'POST', '/api/v1/shipping-options', full.staff, {
          name: `Late ${n}`,
          countries: ['DE'],
          prices: { EUR: 2 },
        }),
      ),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([201, 201, 409, 409]);
    const count = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{
        n: number;
      }>`select count(*)::int as n from cart.shipping_options where tenant_id = ${full.id}`.execute(trx),
    );
    expect(count.rows[0]!.n).toBe(200);
  });

  it("answers 404 for another tenant's shipping option and tax rate ids", async () => {
    const option = await shippingOption(shop, { name: 'Mine', countries: ['DE'], prices: { EUR: 1 } });
    const rate = await taxRate(shop, { country: 'NL', rateBps: 2100, name: 'BTW' });
    for (const [method, url, body] of [
      ['GET', `/api/v1/shipping-options/${option.id}`, undefined],
      ['PUT', `/api/v1/shipping-options/${option.id}`, { name: 'Theirs' }],
      ['DELETE', `/api/v1/shipping-options/${option.id}`, undefined],
      ['GET', `/api/v1/tax-rates/${rate.id}`, undefined],
      ['PUT', `/api/v1/tax-rates/${rate.id}`, { rateBps: 0 }],
      ['DELETE', `/api/v1/tax-rates/${rate.id}`, undefined],
    ] as const) {
      const response = await send(t.app, method, url, other.staff, body);
      expect(response.statusCode, `${method} ${url}`).toBe(404);
    }
    // A shopper of the other store cannot choose it either.
    const { headers } = await newGuestCart(t, other);
    await putAddresses(headers, { shipping: berlin });
    const choose = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', headers, {
      shippingOptionId: option.id,
    });
    expect(choose.statusCode).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/shipping-options/${option.id}`, shop.staff)).json().name).toBe(
      'Mine',
    );
  });
});

describe('tax', () => {
  it('adds tax to exclusive prices and shows the tax inside inclusive ones, per line, region over country', async () => {
    const shopTax = await createShop(t, 'taxshop');
    await taxRate(shopTax, { country: 'US', rateBps: 0, name: 'None' });
    await taxRate(shopTax, { country: 'US', region: 'CA', rateBps: 725, name: 'California' });
    await taxRate(shopTax, { country: 'DE', rateBps: 1900, name: 'MwSt' });
    const duplicate = await send(t.app, 'POST', '/api/v1/tax-rates', shopTax.staff, {
      country: 'de',
      rateBps: 700,
      name: 'x',
    });
    expect(duplicate.statusCode).toBe(409);
    const a = await createSellable(t, shopTax, { prices: { EUR: 1000, USD: 1000 } });
    const b = await createSellable(t, shopTax, { prices: { EUR: 333, USD: 333 } });
    const { headers } = await newGuestCart(t, shopTax, { currency: 'EUR' });
    await addItem(t, headers, { variantId: a.id, quantity: 2 });
    const noAddress = (await addItem(t, headers, { variantId: b.id, quantity: 1 })).json<CartBody>();
    expect(noAddress.totals).toMatchObject({ subtotal: 2333, tax: 0, total: 2333 });

    const exclusive = (await putAddresses(headers, { shipping: berlin })).json<CartBody>();
    // 2000 × 19 % = 380; 333 × 19 % = 63.27 → 63.
    expect(exclusive.lines.map((l) => [l.subtotal, l.tax, l.total])).toEqual([
      [2000, 380, 2380],
      [333, 63, 396],
    ]);
    expect(exclusive.totals).toMatchObject({
      subtotal: 2333,
      tax: 443,
      total: 2776,
      taxRateBps: 1900,
      pricesIncludeTax: false,
    });

    const settings = await send(t.app, 'PUT', '/api/v1/tax-settings', shopTax.staff, {
      pricesIncludeTax: true,
    });
    expect(settings.json()).toEqual({ pricesIncludeTax: true });
    expect((await send(t.app, 'GET', '/api/v1/tax-settings', shopTax.staff)).json()).toEqual({
      pricesIncludeTax: true,
    });
    const inclusive = (await send(t.app, 'GET', '/api/v1/cart', headers)).json<CartBody>();
    // 2000 × 1900 / 11900 = 319.33 → 319; 333 × 1900 / 11900 = 53.17 → 53.
    expect(inclusive.lines.map((l) => [l.subtotal, l.tax, l.total])).toEqual([
      [2000, 319, 2000],
      [333, 53, 333],
    ]);
    expect(inclusive.totals).toMatchObject({ subtotal: 2333, tax: 372, total: 2333, pricesIncludeTax: true });
    await send(t.app, 'PUT', '/api/v1/tax-settings', shopTax.staff, { pricesIncludeTax: false });

    const usd = await newGuestCart(t, shopTax, { currency: 'USD' });
    await addItem(t, usd.headers, { variantId: a.id, quantity: 1 });
    const california = {
      recipient: 'Ann',
      line1: '1 Market St',
      city: 'San Francisco',
      region: 'ca',
      postalCode: '94105',
      country: 'US',
    };
    const inCa = (await putAddresses(usd.headers, { shipping: california })).json<CartBody>();
    expect(inCa.totals).toMatchObject({ tax: 72, total: 1072, taxRateBps: 725 });
    const inNy = (
      await putAddresses(usd.headers, { shipping: { ...california, region: 'NY', postalCode: '10001' } })
    ).json<CartBody>();
    expect(inNy.totals).toMatchObject({ tax: 0, taxRateBps: 0 });
  });

  it('refuses a second rate for a region that differs only in case (409), as regions match whatever their case', async () => {
    await taxRate(shop, { country: 'US', region: 'TX', rateBps: 625, name: 'Texas' });
    const twin = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
      country: 'US',
      region: 'tx',
      rateBps: 100,
      name: 'texas again',
    });
    expect(twin.statusCode).toBe(409);
    expect(twin.json().code).toBe('CONFLICT');
  });

  it('validates tax rates and keeps them to staff', async () => {
    const bad = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
      country: 'XX',
      rateBps: 10_001,
      name: '',
    });
    expect(bad.statusCode).toBe(400);
    const unknownCountry = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
      country: 'XX',
      rateBps: 10,
      name: 'x',
    });
    expect(pointers(unknownCountry.json())).toEqual(['/country']);
    const customer = await newCustomer(t, shop);
    expect(
      (await send(t.app, 'PUT', '/api/v1/tax-settings', customer, { pricesIncludeTax: true })).statusCode,
    ).toBe(403);
    const rate = await taxRate(shop, { country: 'FR', rateBps: 2000, name: 'TVA' });
    const changed = await send(t.app, 'PUT', `/api/v1/tax-rates/${rate.id}`, shop.staff, {
      rateBps: 550,
      region: 'Corse',
    });
    expect(changed.json()).toMatchObject({ country: 'FR', region: 'Corse', rateBps: 550 });
    expect((await send(t.app, 'GET', '/api/v1/tax-rates', shop.staff)).json().items.length).toBeGreaterThan(
      0,
    );
  });
});
