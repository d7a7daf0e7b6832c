import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, newCustomer, type Shop } from '../cart/cart-test-fixtures.ts';
import { stockOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { MAX_OPEN_CAMPAIGNS } from './campaign-service.ts';
import { createSale, type FlashTestApp, saleOf, saleVariant, startFlashApp } from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-campaigns');
  other = await createShop(t, 'fs-campaigns-other');
});
afterAll(() => t?.close());

const later = (ms: number) => new Date(Date.now() + ms).toISOString();

describe('flash-sale campaigns', () => {
  it('takes the allotted units out of available stock into the sale’s pool, and gives them back on cancel', async () => {
    const variant = await saleVariant(t, shop, 50);
    const sale = await createSale(t, shop, variant, {
      units: 20,
      startsAt: later(60_000),
      endsAt: later(3_600_000),
    });
    expect(sale).toMatchObject({
      status: 'scheduled',
      units: 20,
      remaining: 20,
      admitted: 0,
      priority: 'normal',
      perCustomerLimit: 1,
    });
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 50, reserved: 20, available: 30 });

    const cancelled = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff, {
      reason: 'supplier recall',
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'cancelled', cancelReason: 'supplier recall' });
    expect(cancelled.json().settledAt).not.toBeNull();
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 50, reserved: 0, available: 50 });
    // Cancelling again (without a body: no reason) answers the cancelled sale; nothing moves twice.
    const again = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff);
    expect(again.statusCode).toBe(200);
    expect(await stockOf(t, shop, variant)).toMatchObject({ available: 50 });
  });

  it('refuses more units than are available, and leaves stock as it was', async () => {
    const variant = await saleVariant(t, shop, 5);
    const response = await send(t.app, 'POST', '/api/v1/flash-sales', shop.staff, {
      name: 'Too big',
      variantId: variant.id,
      units: 6,
      salePrice: 100,
      currency: 'EUR',
      startsAt: later(1000),
      endsAt: later(60_000),
    });
    expect(response.statusCode, response.body).toBe(409);
    expect(response.json().code).toBe('INSUFFICIENT_STOCK');
    expect(await stockOf(t, shop, variant)).toMatchObject({ available: 5, reserved: 0 });
  });

  it('changes a scheduled sale, moving units between stock and its pool, and refuses changes once it started', async () => {
    const variant = await saleVariant(t, shop, 40);
    const sale = await createSale(t, shop, variant, { units: 10, startsAt: later(60_000) });
    const grown = await send(t.app, 'PUT', `/api/v1/flash-sales/${sale.id}`, shop.staff, {
      units: 25,
      priority: 'urgent',
    });
    expect(grown.statusCode, grown.body).toBe(200);
    expect(grown.json()).toMatchObject({ units: 25, remaining: 25, priority: 'urgent' });
    expect(await stockOf(t, shop, variant)).toMatchObject({ reserved: 25, available: 15 });
    const shrunk = await send(t.app, 'PUT', `/api/v1/flash-sales/${sale.id}`, shop.staff, { units: 5 });
    expect(shrunk.statusCode, shrunk.body).toBe(200);
    expect(await stockOf(t, shop, variant)).toMatchObject({ reserved: 5, available: 35 });

    const live = await createSale(t, shop, variant, { units: 5 });
    const refused = await send(t.app, 'PUT', `/api/v1/flash-sales/${live.id}`, shop.staff, { units: 6 });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('CAMPAIGN_STARTED');
  });

  it('answers bad input with the failing fields', async () => {
    const variant = await saleVariant(t, shop, 5);
    const cases: [Record<string, unknown>, string][] = [
      [{ endsAt: later(-1000), startsAt: later(-5000) }, '/endsAt'],
      [{ startsAt: later(10_000), endsAt: later(5000) }, '/endsAt'],
      [{ endsAt: later(40 * 86_400_000) }, '/endsAt'],
      [{ units: 0 }, '/units'],
      [{ salePrice: -1 }, '/salePrice'],
      [{ currency: 'eur' }, '/currency'],
      // The variant has a price in EUR only: the store does not sell it in USD.
      [{ currency: 'USD' }, '/currency'],
      [{ priority: 'vip' }, '/priority'],
      [{ perCustomerLimit: 0 }, '/perCustomerLimit'],
      [{ variantId: uuidv7() }, '/variantId'],
      [{ sql: 'drop table x' }, '/sql'],
    ];
    for (const [change, pointer] of cases) {
      const response = await send(t.app, 'POST', '/api/v1/flash-sales', shop.staff, {
        name: 'Bad',
        variantId: variant.id,
        units: 1,
        salePrice: 100,
        currency: 'EUR',
        startsAt: later(1000),
        endsAt: later(60_000),
        ...change,
      });
      expect(response.statusCode, `${JSON.stringify(change)}: ${response.body}`).toBe(400);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(JSON.stringify(response.json().errors), JSON.stringify(change)).toContain(pointer);
    }
    expect(await stockOf(t, shop, variant)).toMatchObject({ available: 5 });
  });

  it('is staff-only, and one tenant never sees or touches another’s sales', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const customer = await newCustomer(t, shop);
    for (const [method, url] of [
      ['GET', '/api/v1/flash-sales'],
      ['GET', `/api/v1/flash-sales/${sale.id}`],
      ['GET', `/api/v1/flash-sales/${sale.id}/stats`],
      ['POST', `/api/v1/flash-sales/${sale.id}/cancel`],
    ] as const) {
      expect((await send(t.app, method, url, customer, {})).statusCode, `${method} ${url}`).toBe(403);
    }
    expect((await send(t.app, 'GET', `/api/v1/flash-sales/${sale.id}`, other.staff)).statusCode).toBe(404);
    expect(
      (await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, other.staff, {})).statusCode,
    ).toBe(404);
    expect(
      (await send(t.app, 'PUT', `/api/v1/flash-sales/${sale.id}`, other.staff, { name: 'x' })).statusCode,
    ).toBe(404);
    const list = await send(t.app, 'GET', '/api/v1/flash-sales', other.staff);
    expect(list.json().items).toEqual([]);
    expect((await saleOf(t, shop, sale.id)).status).toBe('live');
  });

  it('lists sales newest first, filtered by status, in cursor pages', async () => {
    const shop2 = await createShop(t, 'fs-campaigns-list');
    const variant = await saleVariant(t, shop2, 10);
    const a = await createSale(t, shop2, variant, { units: 1 });
    const b = await createSale(t, shop2, variant, { units: 1, startsAt: later(60_000) });
    const c = await createSale(t, shop2, variant, { units: 1 });
    const first = await send(t.app, 'GET', '/api/v1/flash-sales?limit=2', shop2.staff);
    expect(first.json().items.map((s: { id: string }) => s.id)).toEqual([c.id, b.id]);
    const next = await send(
      t.app,
      'GET',
      `/api/v1/flash-sales?limit=2&cursor=${first.json().nextCursor}`,
      shop2.staff,
    );
    expect(next.json()).toMatchObject({ items: [{ id: a.id }], nextCursor: null });
    const scheduled = await send(t.app, 'GET', '/api/v1/flash-sales?status=scheduled', shop2.staff);
    expect(scheduled.json().items.map((s: { id: string }) => s.id)).toEqual([b.id]);
    expect((await send(t.app, 'GET', '/api/v1/flash-sales?cursor=nope', shop2.staff)).statusCode).toBe(400);
  });

  it('refuses a tenant more than MAX_OPEN_CAMPAIGNS unsettled sales (409 FLASH_SALE_LIMIT_REACHED, nothing reserved), and takes one again once a sale is cancelled', async () => {
    const shop2 = await createShop(t, 'fs-campaigns-cap');
    const variant = await saleVariant(t, shop2, 10);
    const tomorrow = { units: 1, startsAt: later(86_400_000), endsAt: later(90_000_000) };
    const first = await createSale(t, shop2, variant, tomorrow);
    // The rest of the tenant's open sales, copied in SQL (scheduled tomorrow: the lifecycle leaves them be).
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`insert into flash_sales.campaigns (id, tenant_id, name, variant_id, product_id, sku, title,
          variant_title, currency, sale_price, units, per_customer_limit, payment_window_minutes, priority,
          starts_at, ends_at, created_by)
        select gen_random_uuid(), tenant_id, name, variant_id, product_id, sku, title, variant_title, currency,
          sale_price, units, per_customer_limit, payment_window_minutes, priority, starts_at, ends_at, created_by
        from flash_sales.campaigns, generate_series(2, ${MAX_OPEN_CAMPAIGNS}) where id = ${first.id}`.execute(
        trx,
      ),
    );
    const body = {
      name: 'One too many',
      variantId: variant.id,
      salePrice: 100,
      currency: 'EUR',
      ...tomorrow,
    };
    const refused = await send(t.app, 'POST', '/api/v1/flash-sales', shop2.staff, body);
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toMatchObject({ code: 'FLASH_SALE_LIMIT_REACHED' });
    expect(await stockOf(t, shop2, variant)).toMatchObject({ reserved: 1, available: 9 });
    // Another tenant is not counted against it.
    await createSale(t, shop, await saleVariant(t, shop, 1), { units: 1 });

    const cancelled = await send(t.app, 'POST', `/api/v1/flash-sales/${first.id}/cancel`, shop2.staff, {});
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    const again = await send(t.app, 'POST', '/api/v1/flash-sales', shop2.staff, body);
    expect(again.statusCode, again.body).toBe(201);
  });
});
