import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { settled, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleOf,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

// Issue 12: available stock + the sales' pools + sold = what was received, whatever becomes of a
// sale's order after its stock was committed (confirm got that far), and the saga's log says
// truly where the units went.

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  // Every PSP call takes 300 ms: long enough to act while the capture is out.
  t = await startFlashApp({ MERCATO_TEST_PSP_LATENCY_MS: '300' });
  shop = await createShop(t, 'fs-refund-units');
});
afterAll(() => t?.close());

/** The units a reservation holds now (0 once it ended). */
async function held(key: string): Promise<number> {
  const r = await send(t.app, 'GET', `/api/v1/inventory/reservations/${encodeURIComponent(key)}`, shop.staff);
  expect(r.statusCode, r.body).toBe(200);
  const reservation = r.json<{ status: string; lines: { quantity: number }[] }>();
  return reservation.status === 'active' ? reservation.lines.reduce((n, l) => n + l.quantity, 0) : 0;
}

/** The result the saga logged for undoing its reservation. */
async function reserveUndone(orderId: string): Promise<unknown> {
  const r = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
  expect(r.statusCode, r.body).toBe(200);
  const steps = r.json<{ steps: { step: string; action: string; status: string; output: unknown }[] }>()
    .steps;
  const undo = steps.filter(
    (s) => s.step === 'reserve' && s.action === 'compensate' && s.status === 'succeeded',
  );
  expect(undo).toHaveLength(1);
  return (undo[0]!.output as { result: unknown }).result;
}

/** The inventory ledger of the variant's item, by who moved what into which reservation. */
async function transfersInto(itemId: string, key: string): Promise<{ actor: string; quantity: number }[]> {
  return withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ actor: string; quantity: number }>`
      select actor, quantity from inventory.ledger
      where item_id = ${itemId} and kind = 'transfer' and reservation_key = ${key}
      order by created_at, id`.execute(trx);
    return rows.map((r) => ({ actor: r.actor, quantity: Number(r.quantity) }));
  });
}

/** A paid (completed) order of the sale, its paid unit counted. */
async function paidOrder(saleId: string, buyer: { id: string; headers: Record<string, string> }) {
  const bought = await attempt(t, saleId, buyer, { payment: { token: 'tok_visa' } });
  expect(bought.statusCode, bought.body).toBe(202);
  const orderId: string = bought.json().orderId;
  expect((await settled(t, shop, orderId)).status).toBe('completed');
  await until(async () => (await saleOf(t, shop, saleId)).sold === 1, 'the paid unit counted');
  return orderId;
}

describe('a sale’s order undone after its stock was committed', () => {
  it('refunded while the sale runs: the saga itself puts the unit back into the pool, once', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const pool = `flash-sale:${sale.id}`;
    const [buyer] = await bulkCustomers(t, shop, 1);
    const orderId = await paidOrder(sale.id, buyer!);
    expect(await held(pool)).toBe(1);
    const cancelled = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, {});
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    // What the compensation says it did, it did: the unit is in the pool, moved there by the saga.
    expect(await reserveUndone(orderId)).toBe('returned-to-pool');
    const item = (await stockOf(t, shop, variant)).id;
    const sagaMoves = (await transfersInto(item, pool)).filter((m) => m.actor.startsWith('saga:'));
    expect(sagaMoves).toEqual([{ actor: expect.stringMatching(/^saga:/), quantity: 1 }]);
    await until(async () => (await saleOf(t, shop, sale.id)).released === 1, 'the refund counted');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 0, sold: 0, remaining: 2 });
    // 10 received = 8 available + 2 in the pool + 0 sold: nothing twice, nothing lost.
    expect(await held(pool)).toBe(2);
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 10, reserved: 2, available: 8 });
  });

  it('refunded after the sale ended: the unit goes back to available stock, once', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const orderId = await paidOrder(sale.id, buyer!);
    const ended = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff, {});
    expect(ended.statusCode, ended.body).toBe(200);
    // The unsold unit went back to stock with the sale's end; the sold one is shipped stock.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 9, reserved: 0, available: 9 });
    const cancelled = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, {});
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(await reserveUndone(orderId)).toBe('returned');
    await until(async () => (await saleOf(t, shop, sale.id)).released === 1, 'the refund counted');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ sold: 0 });
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 10, reserved: 0, available: 10 });
  });

  it('failed when the capture is refused after the commit: the unit goes back into the pool, not lost', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const pool = `flash-sale:${sale.id}`;
    const [buyer] = await bulkCustomers(t, shop, 1);
    const bought = await attempt(t, sale.id, buyer!, { payment: { token: 'tok_visa' } });
    expect(bought.statusCode, bought.body).toBe(202);
    const orderId: string = bought.json().orderId;
    // The capture is out (the stock committed): the bank drops the authorization meanwhile.
    await until(async () => {
      const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
        sql<{ id: string }>`
          select st.id from checkout.saga_steps st join checkout.sagas s on s.id = st.saga_id
          where s.order_id = ${orderId} and st.step = 'confirm' and st.action = 'invoke'`.execute(trx),
      );
      return rows.length > 0;
    }, 'the capture started');
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update test_psp.charges set status = 'voided'
        where merchant_id = ${shop.id} and idempotency_key like ${`%${orderId}%`}`.execute(trx),
    );
    expect(await settled(t, shop, orderId)).toMatchObject({ status: 'failed' });
    expect(await reserveUndone(orderId)).toBe('returned-to-pool');
    await until(async () => (await saleOf(t, shop, sale.id)).released === 1, 'the failure counted');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 0, sold: 0, remaining: 2 });
    expect(await held(pool)).toBe(2);
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 10, reserved: 2, available: 8 });
  });
});
