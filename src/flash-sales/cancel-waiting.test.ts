import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
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
  shop = await createShop(t, 'fs-cancel-waiting');
});
afterAll(() => t?.close());

describe('cancelling a sale whose unpaid order was cancelled already', () => {
  it('cancels the sale and gives the units back (it was 409 ILLEGAL_TRANSITION while the order’s outcome was not handled yet)', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 4 });
    const [a, b] = await bulkCustomers(t, shop, 2);
    const gone = await attempt(t, sale.id, a!);
    const waiting = await attempt(t, sale.id, b!);
    expect(gone.statusCode, gone.body).toBe(202);
    expect(waiting.statusCode, waiting.body).toBe(202);
    // The order was cancelled, and its outcome has not reached the sale yet (the order events'
    // delivery is behind, or failed): the admission still waits for payment.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update orders.orders set status = 'cancelled', cancelled_at = now() where id = ${gone.json().orderId}`.execute(
        trx,
      ),
    );
    const cancelled = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff);
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'cancelled', admitted: 0, released: 2 });
    expect((await orderOf(t, shop, waiting.json().orderId)).status).toBe('cancelled');
    // Nothing sold: every unit is back in available stock.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 10, reserved: 0, available: 10 });
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 0, sold: 0 });
  });
});
