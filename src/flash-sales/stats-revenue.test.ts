import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSellable, createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { createSale, type FlashTestApp, startFlashApp } from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-stats-revenue');
});
afterAll(() => t?.close());

const pointers = (body: string) =>
  (JSON.parse(body) as { errors: { pointer: string }[] }).errors.map((e) => e.pointer);

const saleBody = (variantId: string, fields: Record<string, unknown>) => ({
  name: 'Too big',
  variantId,
  currency: 'EUR',
  startsAt: new Date(Date.now() + 3_600_000).toISOString(),
  endsAt: new Date(Date.now() + 7_200_000).toISOString(),
  ...fields,
});

describe("a sale's revenue", () => {
  it('is refused past 2^53 − 1 at creation, where the stats would have lost its last digits', async () => {
    const variant = await createSellable(t, shop, { prices: { EUR: 1000 }, onHand: 1_000_000 });
    // The largest pool at the price just under the largest: 999,999 paid units would make
    // 99,999,899,999,000,001 minor units, which no JavaScript number is.
    const created = await send(
      t.app,
      'POST',
      '/api/v1/flash-sales',
      shop.staff,
      saleBody(variant.id, { units: 1_000_000, salePrice: 99_999_999_999 }),
    );
    expect(created.statusCode, created.body).toBe(400);
    expect(created.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(created.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(pointers(created.body)).toEqual(['/salePrice']);
    expect(created.json().errors[0].message).toContain('99999999999000000');
    const stock = await send(t.app, 'GET', `/api/v1/inventory?variantId=${variant.id}`, shop.staff);
    expect(stock.json().items).toMatchObject([{ reserved: 0 }]);
  });

  it('is refused past 2^53 − 1 when a scheduled sale grows, naming the field that tipped it', async () => {
    const variant = await createSellable(t, shop, { prices: { EUR: 1000 }, onHand: 1_000_000 });
    const created = await send(
      t.app,
      'POST',
      '/api/v1/flash-sales',
      shop.staff,
      saleBody(variant.id, { units: 10, salePrice: 100_000_000_000 }),
    );
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ id: string }>().id;
    const grown = await send(t.app, 'PUT', `/api/v1/flash-sales/${id}`, shop.staff, { units: 1_000_000 });
    expect(grown.statusCode, grown.body).toBe(400);
    expect(pointers(grown.body)).toEqual(['/units']);
    const read = await send(t.app, 'GET', `/api/v1/flash-sales/${id}`, shop.staff);
    expect(read.json()).toMatchObject({ units: 10, salePrice: 100_000_000_000 });
  });

  it('is exact at the largest pool and the largest price it allows', async () => {
    const variant = await createSellable(t, shop, { prices: { EUR: 1000 }, onHand: 1_000_000 });
    const price = Math.floor(Number.MAX_SAFE_INTEGER / 1_000_000); // 9,007,199,254
    const sale = await createSale(t, shop, variant, { units: 1_000_000, salePrice: price });
    // 999,999 paid orders are too many to make one by one: the record's counters say so.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.campaigns set admitted = 999999, sold = 999999 where id = ${sale.id}`.execute(
        trx,
      ),
    );

    const stats = await send(t.app, 'GET', `/api/v1/flash-sales/${sale.id}/stats`, shop.staff);

    expect(stats.statusCode, stats.body).toBe(200);
    expect(stats.json()).toMatchObject({ paid: 999_999, currency: 'EUR' });
    expect(BigInt(stats.json().revenue)).toBe(999_999n * BigInt(price));
  });
});
