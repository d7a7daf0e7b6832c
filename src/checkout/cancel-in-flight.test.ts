import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  placeOrder,
  product,
  readyCart,
  send,
  settled,
  startCheckoutApp,
  stockOf,
  until,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  // Every call to the test PSP takes 400 ms: long enough to cancel while one is out.
  t = await startCheckoutApp({ MERCATO_TEST_PSP_LATENCY_MS: '400' });
  shop = await createStore(t, 'cancel-in-flight-shop');
});
afterAll(() => t.close());

/** The order whose authorize step has started and not finished (its call is out), once there is one. */
async function authorizing(): Promise<string> {
  let orderId: string | undefined;
  await until(async () => {
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ order_id: string }>`
        select s.order_id from checkout.saga_steps st join checkout.sagas s on s.id = st.saga_id
        where st.tenant_id = ${shop.id} and st.step = 'authorize' and st.status = 'started'`.execute(trx),
    );
    orderId = rows[0]?.order_id;
    return orderId !== undefined;
  }, 'an authorization in flight');
  return orderId!;
}

describe('a cancel asked while the authorization is out', () => {
  it('is seen before the confirm step: nothing committed or captured, the payment voided, the stock back', async () => {
    const item = await product(t, shop, 4);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 3 }], customer);
    const placing = placeOrder(t, customer);
    const orderId = await authorizing();
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, {
      reason: 'fraud check',
    });
    expect(cancel.statusCode, cancel.body).toBeLessThan(300);
    const placed = await placing;
    expect(placed.json<Order>()).toMatchObject({ id: orderId });
    expect(await settled(t, shop, orderId)).toMatchObject({
      status: 'cancelled',
      paymentStatus: 'voided',
      cancelReason: 'fraud check',
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
    const saga = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
    const steps = saga.json<{ steps: { step: string; action: string; status: string }[] }>().steps;
    expect(steps.filter((s) => s.step === 'confirm' && s.action === 'invoke')).toEqual([]);
    expect(steps).toContainEqual(
      expect.objectContaining({ step: 'authorize', action: 'invoke', status: 'succeeded' }),
    );
    const charges = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(orderId),
    );
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ status: 'voided', capturedAmount: 0 });
  });
});
