import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { settled, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import { cancelCampaign } from './campaign-service.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  saleOf,
  saleVariant,
  withFlashShop,
} from './flash-test-fixtures.ts';
import { CANCEL_BATCH, cancelWaitingBatch, closeWaitingWindows } from './waiting-orders.ts';

// A sale's cancel cancelled every order still waiting for its payment in ONE transaction: with
// 2,000 of them it ran for about 40 s on PostgreSQL (a minute on PGlite), holding the sale, its
// admissions and orders and its variant's stock row all along: every admission to another sale of
// the variant (and every checkout of it) waited past the 5 s statement timeout and was answered
// 503, and on PGlite, whose one session runs in the event loop, every request of every store and
// every timer waited for the whole of it. The cancel now commits the sale cancelled (its pool back
// to stock, the waiting windows closed) in one short transaction, then cancels the waiting orders
// in bounded transactions, each all or nothing; what a dead process or a failed batch leaves is
// finished by the lifecycle's window sweep (a cancelled sale's waiting orders are due at once).

const WAITING = CANCEL_BATCH + 30;

let t: FlashTestApp;
let shop: Shop;

// Every test request comes from one address: the per-IP limit would refuse the crowd.
withFlashShop(
  'fs-cancel-batches',
  (app, s) => {
    t = app;
    shop = s;
  },
  { MERCATO_FLASH_IP_RATE: '100000000' },
);

/** A sale of `units` with `waiting` unpaid orders, one order paid and one cancelled behind the sale's back. */
async function saleWithWaiting(waiting: number) {
  const variant = await saleVariant(t, shop, waiting + 12);
  const sale = await createSale(t, shop, variant, { units: waiting + 4 });
  const customers = await bulkCustomers(t, shop, waiting + 2);
  const orders: string[] = [];
  for (let i = 0; i < waiting + 2; i += 100) {
    const answers = await Promise.all(customers.slice(i, i + 100).map((c) => attempt(t, sale.id, c)));
    for (const r of answers) {
      expect(r.statusCode, r.body).toBe(202);
      orders.push(r.json().orderId);
    }
  }
  const paid = orders.pop()!;
  const pay = await send(t.app, 'POST', `/api/v1/orders/${paid}/pay`, customers.at(-1)!.headers, {
    payment: { token: 'tok_visa' },
  });
  expect(pay.statusCode, pay.body).toBe(202);
  expect((await settled(t, shop, paid)).status).toBe('completed');
  await until(async () => (await saleOf(t, shop, sale.id)).sold === 1, 'the paid order counted');
  // One order cancelled already, its outcome not handled by the sale yet (its event lost).
  const gone = orders.pop()!;
  await withSystem(t.ctx.db.kysely, (trx) =>
    sql`update orders.orders set status = 'cancelled', cancelled_at = now() where id = ${gone}`.execute(trx),
  );
  return { variant, sale, waiting: orders, paid, gone };
}

/** Each of the sale's admissions with its order's status. */
const pairsOf = (saleId: string) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ order_id: string; admission: string; reason: string | null; order: string }>`
      select a.order_id, a.status as admission, a.release_reason as reason, o.status as order
      from flash_sales.admissions a join orders.orders o on o.id = a.order_id
      where a.campaign_id = ${saleId}`.execute(trx);
    return rows;
  });

/**
 * Every admission and its order agree: waiting with its order created, or released with it ended
 * (but `gone`, whose order was cancelled behind the sale's back while it waited).
 */
function consistent(pairs: Awaited<ReturnType<typeof pairsOf>>, gone: string) {
  for (const p of pairs) {
    if (p.order_id === gone && p.admission === 'admitted') expect(p.order).toBe('cancelled');
    else if (p.admission === 'admitted') expect(p, 'a waiting admission').toMatchObject({ order: 'created' });
    else if (p.admission === 'released') expect(['cancelled', 'failed']).toContain(p.order);
    else expect(p).toMatchObject({ admission: 'paid', order: 'completed' });
  }
}

async function expectAllCancelled(s: Awaited<ReturnType<typeof saleWithWaiting>>) {
  const pairs = await pairsOf(s.sale.id);
  consistent(pairs, s.gone);
  const byOrder = new Map(pairs.map((p) => [p.order_id, p]));
  for (const orderId of [...s.waiting, s.gone]) {
    expect(byOrder.get(orderId)).toMatchObject({
      admission: 'released',
      reason: 'cancelled',
      order: 'cancelled',
    });
  }
  expect(byOrder.get(s.paid)).toMatchObject({ admission: 'paid', order: 'completed' });
  const released = s.waiting.length + 1;
  expect(await saleOf(t, shop, s.sale.id)).toMatchObject({
    status: 'cancelled',
    admitted: 1,
    sold: 1,
    released,
  });
  // Every unit is back in available stock but the one sold; no pool, no hold left.
  const received = s.waiting.length + 12;
  expect(await stockOf(t, shop, s.variant)).toMatchObject({
    onHand: received - 1,
    reserved: 0,
    available: received - 1,
  });
}

describe('a sale cancelled with more waiting orders than a batch', () => {
  it('answers cancelled and cancels every waiting order in bounded batches, every unit back once', async () => {
    const s = await saleWithWaiting(WAITING);
    // Another sale of the same variant and store, selling while the cancel's batches run.
    const other = await createSale(t, shop, s.variant, { units: 5 });
    const buyers = await bulkCustomers(t, shop, 3);
    const cancel = send(t.app, 'POST', `/api/v1/flash-sales/${s.sale.id}/cancel`, shop.staff);
    const meanwhile = await Promise.all(buyers.map((b) => attempt(t, other.id, b)));
    const cancelled = await cancel;
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'cancelled', sold: 1 });
    for (const r of meanwhile) expect(r.statusCode, r.body).toBe(202);
    await until(
      async () => (await saleOf(t, shop, s.sale.id)).admitted === 1,
      'every waiting order cancelled',
      60_000,
    );
    // The other sale's three orders hold their units, its pool the other two.
    const cancelledOther = await send(t.app, 'POST', `/api/v1/flash-sales/${other.id}/cancel`, shop.staff);
    expect(cancelledOther.statusCode, cancelledOther.body).toBe(200);
    await until(
      async () => (await saleOf(t, shop, other.id)).admitted === 0,
      'the other sale’s orders cancelled',
    );
    await expectAllCancelled(s);
  }, 120_000);

  it('leaves a batch that fails (as a process killed in it) all undone, and the next run finishes the cancel', async () => {
    const s = await saleWithWaiting(WAITING);
    const deps = flashDeps(t);
    // The cancel's own transaction commits (as the route's), then the process dies: no batch ran.
    const campaign = await cancelCampaign(deps, shop.id, s.sale.id, 'test', undefined, {}, (trx, c) =>
      closeWaitingWindows(trx, c.id),
    );
    expect(campaign).toMatchObject({ cancelledAt: expect.any(Date), settledAt: expect.any(Date) });
    // A batch dies midway: its tenth order's cancel throws, after nine were cancelled in it.
    let transitions = 0;
    const dying = {
      ...deps,
      orders: {
        ...deps.orders,
        transition: (...args: Parameters<typeof deps.orders.transition>) => {
          if (++transitions === 10) throw new Error('killed');
          return deps.orders.transition(...args);
        },
      },
    };
    await expect(cancelWaitingBatch(dying, shop.id, s.sale.id, 'test', {}, undefined)).rejects.toThrow(
      'killed',
    );
    // All or nothing: no order of it cancelled with its admission still waiting, nor the reverse.
    consistent(await pairsOf(s.sale.id), s.gone);
    // The next run: the lifecycle's window sweep (every process's, a restarted one's too) ends
    // what is left, the orders cancelled; a batch run again changes nothing twice.
    await until(
      async () => {
        await t.flashSales.tick();
        return (await saleOf(t, shop, s.sale.id)).admitted === 1;
      },
      'the sweep finishing the cancel',
      60_000,
    );
    expect(await cancelWaitingBatch(deps, shop.id, s.sale.id, 'test', {}, undefined)).toBeUndefined();
    await expectAllCancelled(s);
    // A cancel asked again answers the cancelled sale as it is.
    const again = await send(t.app, 'POST', `/api/v1/flash-sales/${s.sale.id}/cancel`, shop.staff);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ status: 'cancelled', admitted: 1, released: WAITING + 1 });
    await expectAllCancelled(s);
  }, 120_000);
});
