import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleOf,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-order-hold');
});
afterAll(() => t?.close());

describe('an unpaid order whose window the sale closes late', () => {
  it('gives its units back to the sale, which sells them (they expired to stock: the next buyer got 409 INSUFFICIENT_STOCK)', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2, paymentWindowMinutes: 15 });
    const [unpaid, b, c, d] = await bulkCustomers(t, shop, 4);
    const first = await attempt(t, sale.id, unpaid!);
    expect(first.statusCode, first.body).toBe(202);
    // Half an hour passes with no process running the sale's clock (a deploy, a crash): every
    // time of the sale moves 30 minutes into the past; the sale itself still runs.
    await withSystem(t.ctx.db.kysely, async (trx) => {
      await sql`update flash_sales.campaigns set starts_at = starts_at - interval '30 minutes',
        ends_at = ends_at - interval '30 minutes' where id = ${sale.id}`.execute(trx);
      await sql`update flash_sales.admissions set pay_by = pay_by - interval '30 minutes',
        admitted_at = admitted_at - interval '30 minutes' where campaign_id = ${sale.id}`.execute(trx);
      await sql`update inventory.reservations set expires_at = expires_at - interval '30 minutes'
        where key in (${`flash-sale:${sale.id}`}, ${`order-${first.json().orderId}`})`.execute(trx);
    });
    // Back up: the inventory's sweeper and the sale's clock catch up.
    await t.inventory.sweepExpired();
    await t.flashSales.tick();
    expect((await orderOf(t, shop, first.json().orderId)).status).toBe('failed');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 0, released: 1, remaining: 2 });
    for (const buyer of [b, c]) {
      const bought = await attempt(t, sale.id, buyer!);
      expect(bought.statusCode, bought.body).toBe(202);
    }
    const late = await attempt(t, sale.id, d!);
    expect([late.statusCode, late.json().code]).toEqual([409, 'SOLD_OUT']);
    // 10 received: 8 available, 2 held by the two orders.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 10, reserved: 2, available: 8 });
  });
});
