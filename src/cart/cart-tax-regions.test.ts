import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
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
  shop = await createShop(t, 'regionshop');
});
afterAll(() => t.close());

async function taxRate(body: Record<string, unknown>, at: Shop = shop) {
  const response = await send(t.app, 'POST', '/api/v1/tax-rates', at.staff, body);
  expect(response.statusCode, response.body).toBe(201);
  return response.json<{ id: string; region: string | null }>();
}

const address = (country: string, region: string | null, postalCode: string) => ({
  recipient: 'Ann',
  line1: '1 Main St',
  city: 'City',
  region,
  postalCode,
  country,
});

/** A guest cart in USD with one line, and the answer to setting its shipping address. */
async function cartShippingTo(country: string, region: string | null, postalCode: string, at: Shop = shop) {
  const variant = await createSellable(t, at, { prices: { USD: 1000 } });
  const { headers } = await newGuestCart(t, at, { currency: 'USD' });
  await addItem(t, headers, { variantId: variant.id, quantity: 1 });
  const shipping = address(country, region, postalCode);
  const response = await send(t.app, 'PUT', '/api/v1/cart/addresses', headers, { shipping });
  return { headers, response };
}

/** The tax rate a guest cart in USD gets for a shipping address in this country and region. */
async function rateFor(
  country: string,
  region: string,
  postalCode: string,
  at: Shop = shop,
): Promise<number> {
  const { response } = await cartShippingTo(country, region, postalCode, at);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<CartBody>().totals.taxRateBps;
}

const pointers = (body: string) =>
  (JSON.parse(body) as { errors: { pointer: string }[] }).errors.map((e) => e.pointer);

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

describe('a region of the United States, Canada or Australia', () => {
  let shop2: Shop;
  beforeAll(async () => {
    shop2 = await createShop(t, 'subdivisionshop');
  });

  it('is stored as its ISO 3166-2 code when a rate names it, so the rate applies to an address naming it by code or name', async () => {
    const rate = await taxRate({ country: 'US', region: 'California', rateBps: 725, name: 'CA tax' }, shop2);
    expect(await rateFor('US', 'CA', '94105', shop2)).toBe(725);
    expect(await rateFor('US', 'ca', '94105', shop2)).toBe(725);
    expect(await rateFor('US', 'California ', '94105', shop2)).toBe(725);
    expect(rate.region).toBe('CA');
    const twin = await send(t.app, 'POST', '/api/v1/tax-rates', shop2.staff, {
      country: 'US',
      region: 'CA',
      rateBps: 100,
      name: 'again',
    });
    expect(twin.statusCode, twin.body).toBe(409);
    const aussie = await taxRate({ country: 'AU', region: ' victoria ', rateBps: 1000, name: 'VIC' }, shop2);
    expect(aussie.region).toBe('VIC');
  });

  it('is stored as its code on an address, so a rate for the code applies to an address naming it', async () => {
    await taxRate({ country: 'US', region: 'NY', rateBps: 400, name: 'NY tax' }, shop2);
    const { response } = await cartShippingTo('US', '  new   YORK ', '10001', shop2);
    expect(response.statusCode, response.body).toBe(200);
    const cart = response.json<CartBody>();
    expect(cart.shippingAddress?.region).toBe('NY');
    expect(cart.totals.taxRateBps).toBe(400);
  });

  it('is one region of Canada whether named Québec, Quebec or QC', async () => {
    const rate = await taxRate({ country: 'CA', region: 'Québec', rateBps: 1498, name: 'TPS+TVQ' }, shop2);
    for (const region of ['Quebec', 'QC', 'québec', 'QUÉBEC']) {
      expect(await rateFor('CA', region, 'H2X 1Y4', shop2)).toBe(1498);
    }
    expect(rate.region).toBe('QC');
    const twin = await send(t.app, 'POST', '/api/v1/tax-rates', shop2.staff, {
      country: 'CA',
      region: 'Quebec',
      rateBps: 500,
      name: 'again',
    });
    expect(twin.statusCode, twin.body).toBe(409);
  });

  it('is refused on a rate when it is none of the country’s, naming /region and the country', async () => {
    const created = await send(t.app, 'POST', '/api/v1/tax-rates', shop2.staff, {
      country: 'US',
      region: 'Calif.',
      rateBps: 725,
      name: 'typo',
    });
    expect(created.statusCode, created.body).toBe(400);
    expect(created.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(created.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(pointers(created.body)).toEqual(['/region']);
    expect(created.json().errors[0].message).toContain('US');
    const rate = await taxRate({ country: 'GB', region: 'Scotland', rateBps: 2000, name: 'VAT' }, shop2);
    const moved = await send(t.app, 'PUT', `/api/v1/tax-rates/${rate.id}`, shop2.staff, { country: 'US' });
    expect(moved.statusCode, moved.body).toBe(400);
    expect(pointers(moved.body)).toEqual(['/region']);
  });

  it('is refused on an address when it is none of the country’s, as a wrong region is a wrong tax', async () => {
    const { response } = await cartShippingTo('US', 'Calif.', '94105', shop2);
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(pointers(response.body)).toEqual(['/shipping/region']);
  });

  it('is required on an inline address, as the address book requires it (400 at its pointer)', async () => {
    const { headers, response } = await cartShippingTo('US', null, '94105', shop2);
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(pointers(response.body)).toEqual(['/shipping/region']);
    expect(response.json().errors[0].message).toBe('is required in US');
    const billing = address('AU', '  ', '2000');
    const blank = await send(t.app, 'PUT', '/api/v1/cart/addresses', headers, { billing });
    expect(blank.statusCode, blank.body).toBe(400);
    expect(pointers(blank.body)).toEqual(['/billing/region']);
  });

  it("of a customer's address book is read as its code, and one saved before the book checked regions is refused naming the id", async () => {
    const customer = await newCustomer(t, shop2);
    const book = async (region: string) => {
      const saved = await send(t.app, 'POST', '/api/v1/users/addresses', customer, {
        type: 'SHIPPING',
        ...address('US', region, '02108'),
      });
      expect(saved.statusCode, saved.body).toBe(201);
      return saved.json<{ id: string }>().id;
    };
    await send(t.app, 'POST', '/api/v1/cart', customer, {});
    const known = await book('massachusetts');
    const set = await send(t.app, 'PUT', '/api/v1/cart/addresses', customer, {
      shipping: { addressId: known },
    });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json<CartBody>().shippingAddress).toMatchObject({ addressId: known, region: 'MA' });
    // Rows saved before the book checked regions stay as they were: "Mass.", or none at all.
    for (const region of [null, 'Mass.']) {
      const old = await book('MA');
      await withTenant(t.ctx.db.kysely, shop2.id, async (trx) => {
        await sql`update identity.addresses set region = ${region} where id = ${old}`.execute(trx);
      });
      const refused = await send(t.app, 'PUT', '/api/v1/cart/addresses', customer, {
        billing: { addressId: old },
      });
      expect(refused.statusCode, refused.body).toBe(400);
      expect(pointers(refused.body)).toEqual(['/billing/addressId']);
      expect(refused.json().errors[0].message).toContain('fix the saved address');
    }
  });

  it('of an address stored before regions were checked (" u.s. virgin islands ") gets the rate of its code', async () => {
    await taxRate({ country: 'US', region: 'VI', rateBps: 625, name: 'VI tax' }, shop2);
    const { headers, response } = await cartShippingTo('US', 'VI', '00802', shop2);
    expect(response.statusCode, response.body).toBe(200);
    const cartId = response.json<CartBody>().id;
    // And a rate stored by its name beside the code's, as migration 0073 leaves such a pair: the code's applies.
    await withTenant(t.ctx.db.kysely, shop2.id, async (trx) => {
      await sql`update cart.carts
        set shipping_address = jsonb_set(shipping_address, '{region}', '" u.s. virgin islands "')
        where id = ${cartId}`.execute(trx);
      await sql`insert into cart.tax_rates (id, tenant_id, country, region, rate_bps, name)
        values (gen_random_uuid(), ${shop2.id}, 'US', 'U.S. Virgin Islands', 100, 'old')`.execute(trx);
    });
    const read = await send(t.app, 'GET', '/api/v1/cart', headers);
    expect(read.json<CartBody>().shippingAddress?.region).toBe(' u.s. virgin islands ');
    expect(read.json<CartBody>().totals.taxRateBps).toBe(625);
  });

  it('leaves other countries’ regions free text, matched as before', async () => {
    const rate = await taxRate({ country: 'DE', region: ' Bayern ', rateBps: 1900, name: 'MwSt' }, shop2);
    expect(rate.region).toBe('Bayern');
    expect(await rateFor('DE', 'BAYERN', '80331', shop2)).toBe(1900);
    expect(await rateFor('DE', 'Nowhere', '10115', shop2)).toBe(0);
  });
});
