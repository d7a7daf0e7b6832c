import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { testRedisUrl } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleOf,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

// The gate in process (embedded) and in Redis (production), each in front of the same record.
const GATES = [
  { gate: 'in-process', env: {} as Record<string, string> },
  ...(testRedisUrl()
    ? [{ gate: 'redis', env: { REDIS_URL: testRedisUrl()!, MERCATO_REDIS_PREFIX: `test-fs-${uuidv7()}:` } }]
    : []),
];

// A sale's pool holding fewer units than its record counts as left (a bug, a change to the pool
// behind the sale's back, a crash between two steps): the batch asking for the missing units failed
// whole with an internal INSUFFICIENT_STOCK, and so did every batch after it; the sale stalled.
describe.each(GATES)('a sale whose pool is short, through the $gate gate', ({ env }) => {
  let t: FlashTestApp;
  let shop: Shop;

  beforeAll(async () => {
    // Every test request comes from one address: the per-IP limit would refuse the crowd.
    t = await startFlashApp({ ...env, MERCATO_FLASH_IP_RATE: '100000000' });
    shop = await createShop(t, 'fs-pool-short');
  });
  afterAll(() => t?.close());

  /** The units the sale's pool holds, and the admissions the record has. */
  const recordOf = (saleId: string) =>
    withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows: pool } = await sql<{ units: number }>`
        select coalesce(sum(l.quantity), 0)::int as units from inventory.reservations r
        left join inventory.reservation_lines l on l.reservation_id = r.id
        where r.key = ${`flash-sale:${saleId}`} and r.status = 'active'`.execute(trx);
      const { rows: admissions } = await sql<{ order_id: string; quantity: number }>`
        select order_id, quantity from flash_sales.admissions
        where campaign_id = ${saleId} and status <> 'released'`.execute(trx);
      return { pool: pool[0]!.units, admissions };
    });

  const shortfallUnits = async () => {
    const text = await t.ctx.metrics.registry.getSingleMetricAsString(
      'mercato_flash_sale_pool_shortfall_units_total',
    );
    return Number(/^mercato_flash_sale_pool_shortfall_units_total (\d+)/m.exec(text)?.[1]);
  };

  it('sells exactly what the pool holds, answers every other attempt sold out, and lowers the record and the gate to the pool', async () => {
    const variant = await saleVariant(t, shop, 20);
    const sale = await createSale(t, shop, variant, { units: 10 });
    const customers = await bulkCustomers(t, shop, 17);
    for (const buyer of customers.slice(0, 2)) {
      const r = await attempt(t, sale.id, buyer);
      expect(r.statusCode, r.body).toBe(202);
    }
    // Five units leave the open sale's pool behind its back (through the inventory's own API, as
    // a bug would), back to available stock: the pool holds 3, the record and the gate count 8.
    const drift = `drift-${uuidv7()}`;
    const lines = [{ variantId: variant.id, quantity: 5 }];
    await t.inventory.transfer(shop.id, { from: `flash-sale:${sale.id}`, to: drift, lines, actor: 'test' });
    await t.inventory.release(shop.id, drift, 'test');
    expect((await recordOf(sale.id)).pool).toBe(3);
    const before = await shortfallUnits();

    // Twelve buyers at once: more than the pool holds, and more than the gate believes is left.
    const answers = await Promise.all(customers.slice(2, 14).map((buyer) => attempt(t, sale.id, buyer)));
    const admitted = answers.filter((r) => r.statusCode === 202).map((r) => r.json().orderId as string);
    expect(admitted).toHaveLength(3);
    for (const r of answers.filter((a) => a.statusCode !== 202)) {
      expect([r.statusCode, r.json().code], r.body).toEqual([409, 'SOLD_OUT']);
    }
    for (const orderId of admitted) expect((await orderOf(t, shop, orderId)).status).toBe('created');

    // The record: five admissions (two before, three now), each with its order; the sale's units
    // lowered to what it really had (5), sold out; the pool empty; the drift counted for operators.
    const record = await recordOf(sale.id);
    expect(record.pool).toBe(0);
    expect(record.admissions).toHaveLength(5);
    expect(record.admissions.reduce((sum, a) => sum + a.quantity, 0)).toBe(5);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({
      units: 5,
      admitted: 5,
      remaining: 0,
      status: 'sold_out',
    });
    expect((await shortfallUnits()) - (Number.isNaN(before) ? 0 : before)).toBe(5);
    // 20 received: 5 held by the orders, the 5 drifted units and the other 10 available.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 20, reserved: 5, available: 15 });

    // The gate agrees with the record already: reconciliation finds nothing to repair.
    expect(await t.flashSales.reconcile(shop.id, sale.id)).toMatchObject({
      record: { units: 5, admitted: 5, remaining: 0 },
      gate: { loaded: true, remaining: 0, inFlight: 0 },
      repairs: [],
    });
    const late = await attempt(t, sale.id, customers[14]!);
    expect([late.statusCode, late.json().code], late.body).toEqual([409, 'SOLD_OUT']);

    // A unit that comes back (an unpaid order's window closes) is sold once more, and only once.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.admissions set pay_by = now() - interval '1 second'
        where order_id = ${admitted[0]!}`.execute(trx),
    );
    await t.flashSales.tick();
    expect(await saleOf(t, shop, sale.id)).toMatchObject({
      units: 5,
      admitted: 4,
      released: 1,
      remaining: 1,
    });
    const again = await Promise.all(customers.slice(15, 17).map((buyer) => attempt(t, sale.id, buyer)));
    expect(again.map((r) => r.statusCode).sort()).toEqual([202, 409]);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 5, remaining: 0, status: 'sold_out' });
    expect((await recordOf(sale.id)).pool).toBe(0);
    expect((await t.flashSales.reconcile(shop.id, sale.id)).repairs).toEqual([]);
  });

  it('answers sold out, not 409 INSUFFICIENT_STOCK, when the pool was released behind the sale', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 3 });
    const customers = await bulkCustomers(t, shop, 4);
    await t.inventory.release(shop.id, `flash-sale:${sale.id}`, 'test');
    for (const buyer of customers.slice(0, 3)) {
      const r = await attempt(t, sale.id, buyer);
      expect([r.statusCode, r.json().code], r.body).toEqual([409, 'SOLD_OUT']);
    }
    // Once the process reads the sale again (its settings are cached for a second), a sale of 0
    // units is sold out, not "not live".
    await sleep(1100);
    const later = await attempt(t, sale.id, customers[3]!);
    expect([later.statusCode, later.json().code], later.body).toEqual([409, 'SOLD_OUT']);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({
      units: 0,
      admitted: 0,
      remaining: 0,
      status: 'sold_out',
    });
    expect((await t.flashSales.reconcile(shop.id, sale.id)).repairs).toEqual([]);
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 5, reserved: 0, available: 5 });
  });
});
