import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  admissionOf,
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';
import { createMemoryGate } from './gate-memory.ts';
import { createLifecycle } from './lifecycle.ts';

const silent = pino({ level: 'silent' });

// The lifecycle's two bounded passes (the running sales' reconciliation, the payment windows'
// tenants) read their first n rows in no order: past the bound the same ones were served every
// time and the rest never. Each test runs a lifecycle of its own with small bounds.

describe('reconciling more running sales than one pass takes', () => {
  let t: FlashTestApp;
  let shop: Shop;

  beforeAll(async () => {
    t = await startFlashApp();
    shop = await createShop(t, 'fs-turns-reconcile');
  });
  afterAll(() => t?.close());

  it('repairs every running sale’s gate in turn: three sales, two a pass, all repaired in two passes', async () => {
    const variant = await saleVariant(t, shop, 30);
    const sales: { id: string }[] = [];
    for (let i = 0; i < 3; i++) sales.push(await createSale(t, shop, variant, { units: 10 }));
    // A gate of the lifecycle's own, each sale's counter drifted from the record (10 left, none admitted).
    const gate = createMemoryGate();
    for (const sale of sales) await gate.load(sale.id, { remaining: 3, perCustomer: [], keys: [] }, 3600);
    const lifecycle = createLifecycle(flashDeps(t, gate), silent, { reconcileEvery: 1, reconcileBatch: 2 });
    try {
      await lifecycle.tick();
      await lifecycle.tick();
    } finally {
      await lifecycle.close();
    }
    const remaining = await Promise.all(sales.map(async (s) => (await gate.snapshot(s.id))?.remaining));
    expect(remaining).toEqual([10, 10, 10]);
  });
});

describe('closing the payment windows of more tenants than one tick takes', () => {
  let t: FlashTestApp;

  beforeAll(async () => {
    t = await startFlashApp();
  });
  afterAll(() => t?.close());

  /** A shop with a running sale and one admitted order nobody paid; answers the shop and the order. */
  async function unpaidOrder(slug: string): Promise<{ shop: Shop; orderId: string }> {
    const shop = await createShop(t, slug);
    const sale = await createSale(t, shop, await saleVariant(t, shop, 5), { units: 2 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const admitted = await attempt(t, sale.id, buyer!);
    expect(admitted.statusCode, admitted.body).toBe(202);
    return { shop, orderId: admitted.json().orderId };
  }

  it('closes every tenant’s windows in turn when tenants whose windows cannot close fill the bound', async () => {
    const stuck: { shop: Shop; orderId: string }[] = [];
    for (let i = 0; i < 3; i++) stuck.push(await unpaidOrder(`fs-turns-stuck-${i}`));
    const healthy = await unpaidOrder('fs-turns-healthy');
    // The app's own clock stops: only the lifecycle under test closes windows from here on.
    await t.flashSales.stop?.();
    const db = t.ctx.db.kysely;
    await withSystem(db, async (trx) => {
      await sql`update flash_sales.admissions set pay_by = now() - interval '1 second'
        where order_id = any(${[...stuck, healthy].map((s) => s.orderId)}::uuid[])`.execute(trx);
      // Three tenants whose windows fail to close every tick (logged, tried again): each holds a
      // place in the bound of two for as long as it fails.
      await sql`create function flash_sales.test_refuse_release() returns trigger language plpgsql as $$
        begin raise exception 'refused by the test'; end $$`.execute(trx);
      await sql`create trigger test_refuse_release before update on flash_sales.admissions for each row
        when (old.tenant_id in (${sql.join(stuck.map((s) => sql.lit(s.shop.id)))}))
        execute function flash_sales.test_refuse_release()`.execute(trx);
    });
    const lifecycle = createLifecycle(flashDeps(t), silent, { windowTenants: 2 });
    try {
      await lifecycle.tick();
      await lifecycle.tick();
      expect(await admissionOf(t, healthy.orderId)).toEqual({
        status: 'released',
        release_reason: 'timeout',
      });
      expect((await orderOf(t, healthy.shop, healthy.orderId)).status).toBe('failed');
      for (const s of stuck) expect((await admissionOf(t, s.orderId))?.status).toBe('admitted');
    } finally {
      await withSystem(db, async (trx) => {
        await sql`drop trigger test_refuse_release on flash_sales.admissions`.execute(trx);
        await sql`drop function flash_sales.test_refuse_release()`.execute(trx);
      });
    }
    // Once they can, the others close too: two ticks for three tenants, two a tick.
    try {
      await lifecycle.tick();
      await lifecycle.tick();
    } finally {
      await lifecycle.close();
    }
    for (const s of stuck) {
      expect(await admissionOf(t, s.orderId)).toEqual({ status: 'released', release_reason: 'timeout' });
      expect((await orderOf(t, s.shop, s.orderId)).status).toBe('failed');
    }
  });
});
