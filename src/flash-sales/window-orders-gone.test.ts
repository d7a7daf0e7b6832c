import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { STATUS_EVENT_TYPES } from '../orders/index.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
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
import { createLifecycle } from './lifecycle.ts';
import { orderOutcomes } from './order-outcomes.ts';

let t: FlashTestApp;
let shop: Shop;

withFlashShop('fs-window-orders-gone', (app, s) => {
  t = app;
  shop = s;
});

describe('closing the payment windows of a tenant whose oldest due orders were cancelled unseen', () => {
  it('releases the cancelled orders’ admissions and closes the later window (the cancelled ones filled the batch every tick); their late events move nothing again', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 4 });
    const buyers = await bulkCustomers(t, shop, 4);
    const orders: string[] = [];
    for (const buyer of buyers) {
      const admitted = await attempt(t, sale.id, buyer);
      expect(admitted.statusCode, admitted.body).toBe(202);
      orders.push(admitted.json().orderId);
    }
    // The app's own clock stops: only the lifecycle under test closes windows from here on.
    await t.flashSales.stop?.();
    const cancelled = orders.slice(0, 3);
    const unpaid = orders[3]!;
    await withSystem(t.ctx.db.kysely, async (trx) => {
      // Three orders cancelled whose outcome never reached the sale (as a dead-lettered order event
      // leaves them), their windows the oldest; the fourth is a plain unpaid order due after them.
      await sql`update orders.orders set status = 'cancelled', cancelled_at = now()
        where id = any(${cancelled}::uuid[])`.execute(trx);
      await sql`update flash_sales.admissions set pay_by = now() - interval '10 seconds'
        where order_id = any(${cancelled}::uuid[])`.execute(trx);
      await sql`update flash_sales.admissions set pay_by = now() - interval '1 second'
        where order_id = ${unpaid}`.execute(trx);
    });
    const lifecycle = createLifecycle(flashDeps(t), silent, { windowBatch: 3 });
    try {
      await lifecycle.tick();
      await lifecycle.tick();
    } finally {
      await lifecycle.close();
    }
    const failed = await orderOf(t, shop, unpaid);
    expect(failed.status).toBe('failed');
    expect(failed.failure?.reason).toBe('timeout');
    expect(await admissionOf(t, unpaid)).toEqual({ status: 'released', release_reason: 'timeout' });
    for (const id of cancelled)
      expect(await admissionOf(t, id)).toEqual({ status: 'released', release_reason: 'cancelled' });
    // Every unit back in the sale's pool once: nothing admitted, nothing lost, none twice.
    const whole = { onHand: 10, reserved: 4, available: 6 };
    const sold = { admitted: 0, sold: 0, released: 4, remaining: 4 };
    expect(await stockOf(t, shop, variant)).toMatchObject(whole);
    expect(await saleOf(t, shop, sale.id)).toMatchObject(sold);

    // The cancelled orders' events arrive late after all: the sale has handled them already.
    const outcomes = orderOutcomes(flashDeps(t), silent);
    for (const id of cancelled) {
      const order = await orderOf(t, shop, id);
      await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
        outcomes.handle(trx, {
          id: uuidv7(),
          type: STATUS_EVENT_TYPES.cancelled,
          source: 'orders',
          subject: id,
          time: new Date().toISOString(),
          data: order,
          tenantid: shop.id,
        }),
      );
    }
    expect(await stockOf(t, shop, variant)).toMatchObject(whole);
    expect(await saleOf(t, shop, sale.id)).toMatchObject(sold);
  });
});
