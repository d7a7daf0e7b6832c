import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf, settled, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { STATUS_EVENT_TYPES } from '../orders/index.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { gateStateOf } from './admission-store.ts';
import {
  admissionOf,
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  saleOf,
  saleVariant,
  silent,
  withFlashShop,
} from './flash-test-fixtures.ts';
import { createMemoryGate } from './gate-memory.ts';
import { createLifecycle } from './lifecycle.ts';
import { orderOutcomes } from './order-outcomes.ts';
import type { FlashSalesTrx } from './tables.ts';

// The payment queue marks an admission paying as it starts its order's saga; only the order's
// event moved it on. An event dead-lettered left it paying for ever: the stats showed it paying,
// `sold` never counted it, and a failed order's unit never went back to the gate.

let t: FlashTestApp;
let shop: Shop;

withFlashShop('fs-paying-sweep', (app, s) => {
  t = app;
  shop = s;
});

const statsOf = async (saleId: string) => {
  const r = await send(t.app, 'GET', `/api/v1/flash-sales/${saleId}/stats`, shop.staff);
  expect(r.statusCode, r.body).toBe(200);
  return r.json<{ paid: number; paying: number; released: number; remaining: number }>();
};

/** The order's event, as the WAL hands it to the subscriber (late: requeued from the dead letters). */
const lateEvent = async (type: string, orderId: string) => ({
  id: uuidv7(),
  type,
  source: 'orders',
  subject: orderId,
  time: new Date().toISOString(),
  data: await orderOf(t, shop, orderId),
  tenantid: shop.id,
});

describe('admissions left paying by an order event that never came', () => {
  it('are settled from their order past the grace (paid and counted, or released with their units back), one at a time past the bound, and the late events then change nothing', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 4 });
    const [a, b, c, d] = await bulkCustomers(t, shop, 4);
    // Admitted first, so its order id comes first: without turns it would hold a bound of one for ever.
    const running = (await attempt(t, sale.id, a!)).json().orderId as string;
    const paid = (await attempt(t, sale.id, b!, { payment: { token: 'tok_visa' } })).json().orderId as string;
    const declined = (await attempt(t, sale.id, c!, { payment: { token: 'tok_declined' } })).json()
      .orderId as string;
    const recent = (await attempt(t, sale.id, d!, { payment: { token: 'tok_visa' } })).json()
      .orderId as string;
    expect((await settled(t, shop, paid)).status).toBe('completed');
    expect((await settled(t, shop, recent)).status).toBe('completed');
    expect(await settled(t, shop, declined)).toMatchObject({
      status: 'failed',
      failure: { reason: 'payment_declined' },
    });
    await until(async () => {
      const s = await saleOf(t, shop, sale.id);
      return s.sold === 2 && s.released === 1;
    }, 'the sale handles the outcomes');
    // The app's own clock and queue stop: only the lifecycle under test sweeps from here on.
    await t.flashSales.stop?.();
    await withSystem(t.ctx.db.kysely, async (trx) => {
      // The outcomes undone, as a dead-lettered event leaves them: paying, nothing counted.
      await sql`update flash_sales.admissions set status = 'paying', release_reason = null
        where order_id = any(${[paid, declined, recent, running]}::uuid[])`.execute(trx);
      await sql`update flash_sales.campaigns set sold = 0, admitted = 4, released = 0
        where id = ${sale.id}`.execute(trx);
      // One whose saga still runs (paying, its authorization pending).
      await sql`update orders.orders set status = 'payment_processing' where id = ${running}`.execute(trx);
      // Past the deadline and the grace (10 minutes by default); the last one only just past the deadline.
      await sql`update flash_sales.admissions set pay_by = now() - interval '11 minutes'
        where order_id = any(${[paid, declined, running]}::uuid[])`.execute(trx);
      await sql`update flash_sales.admissions set pay_by = now() - interval '1 minute'
        where order_id = ${recent}`.execute(trx);
    });
    expect(await statsOf(sale.id)).toMatchObject({ paid: 0, paying: 4, released: 0, remaining: 0 });
    // Two sold (on hand 8), the running order's unit and the declined one's (back in the pool) reserved.
    const stock = { onHand: 8, reserved: 2, available: 6 };
    expect(await stockOf(t, shop, variant)).toMatchObject(stock);
    // A gate of the lifecycle's own, as the record has it: nothing left.
    const gate = createMemoryGate();
    await gate.load(
      sale.id,
      await withTenant(t.ctx.db.kysely, shop.id, (trx) => gateStateOf(trx as FlashSalesTrx, sale.id, 4)),
      3600,
    );
    expect((await gate.snapshot(sale.id))?.remaining).toBe(0);

    // One admission a tick: three ticks for the three due ones, the running one first by id.
    const lifecycle = createLifecycle(flashDeps(t, gate), silent, { payingBatch: 1 });
    try {
      for (let i = 0; i < 3; i++) await lifecycle.tick();
    } finally {
      await lifecycle.close();
    }
    expect(await admissionOf(t, paid)).toEqual({ status: 'paid', release_reason: null });
    expect(await admissionOf(t, declined)).toEqual({
      status: 'released',
      release_reason: 'payment_declined',
    });
    expect(await admissionOf(t, running)).toEqual({ status: 'paying', release_reason: null });
    expect(await admissionOf(t, recent)).toEqual({ status: 'paying', release_reason: null });
    const after = { admitted: 3, sold: 1, released: 1, remaining: 1 };
    expect(await saleOf(t, shop, sale.id)).toMatchObject(after);
    expect(await statsOf(sale.id)).toMatchObject({ paid: 1, paying: 2, released: 1, remaining: 1 });
    // The declined unit is in the pool already (the saga's compensation): nothing moves again,
    // and it goes back to the gate for the next buyer.
    expect(await stockOf(t, shop, variant)).toMatchObject(stock);
    expect((await gate.snapshot(sale.id))?.remaining).toBe(1);

    // The events arrive late after all (requeued): the sale has handled them already.
    const outcomes = orderOutcomes(flashDeps(t, gate), silent);
    for (const event of [
      await lateEvent(STATUS_EVENT_TYPES.completed, paid),
      await lateEvent(STATUS_EVENT_TYPES.failed, declined),
    ])
      await withTenant(t.ctx.db.kysely, shop.id, (trx) => outcomes.handle(trx, event));
    expect(await admissionOf(t, paid)).toEqual({ status: 'paid', release_reason: null });
    expect(await admissionOf(t, declined)).toEqual({
      status: 'released',
      release_reason: 'payment_declined',
    });
    expect(await saleOf(t, shop, sale.id)).toMatchObject(after);
    expect(await stockOf(t, shop, variant)).toMatchObject(stock);
    expect((await gate.snapshot(sale.id))?.remaining).toBe(1);
  });
});
