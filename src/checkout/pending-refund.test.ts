import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Payment } from '../payments/index.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from './checkout-test-fixtures.ts';
import { refundApp } from './refund-test-fixtures.ts';

// A staff refund whose provider call failed stays pending, holding its amount: nobody may have
// asked again with its refundKey. The payments module asks the provider again under that key
// (the refund's recheck), so the refund ends as the provider says, on a live order and on a
// cancelled one. Over real HTTP (a listening server and fetch), on each database.

// A short step timeout: a refund's recheck comes a step's timeout and a second after it began.
const app = refundApp('pending-refund-shop', { MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1000' });

/** The PSP's refunds of the payment's charge that went through: [idempotency key, amount]. */
async function pspRefunds(payment: Payment) {
  const charge = await app.kit.chargeOf(payment);
  const { rows } = await sql<{ idempotency_key: string; amount: string | number }>`
    select idempotency_key, amount from test_psp.operations
    where kind = 'refund' and charge_id = ${charge.id} and result->>'status' = 'refunded'
    order by created_at`.execute(app.kit.db());
  return rows.map((r) => [r.idempotency_key, Number(r.amount)]);
}

describe('a staff refund whose provider call failed', () => {
  it('is asked again under its refundKey: the provider refunds it once, the payment shows it', async () => {
    const { order, payment } = await app.kit.completedOrder();
    const cut = await app.kit.staffRefundCut(payment, 600, 'staff-cut');
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'completed', refundedAmount: 0 });
    // The provider can be reached again; nobody asks again with the refundKey.
    await cut.reach();

    await until(
      async () => (await app.kit.paymentOf(payment.id)).refundedAmount === 600,
      'the pending refund settled',
    );
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({
      status: 'partially_refunded',
      refundedAmount: 600,
    });
    expect(await pspRefunds(payment)).toEqual([[`refund:${payment.id}:staff-cut`, 600]]);
    // Staff asking again with the key get the refund as it ended (no second refund).
    const again = await app.kit.staffRefund(payment, 600, 'staff-cut');
    expect(again.status, JSON.stringify(again.json)).toBeLessThan(300);
    expect(await pspRefunds(payment)).toHaveLength(1);
    expect((await app.kit.orderOf(order.id)).status).toBe('completed');
  }, 60_000);

  it('on a cancelled order, ends with the customer refunded in full: the cancel gave back the rest', async () => {
    const { customer, order, payment } = await app.kit.completedOrder();
    const total = order.totals.total;
    const cut = await app.kit.staffRefundCut(payment, 600, 'staff-before-cancel');
    const cancelled = await app.kit.cancel(order.id, customer);
    expect(cancelled.status, JSON.stringify(cancelled.json)).toBeLessThan(300);
    await cut.reach();

    await until(
      async () => (await app.kit.paymentOf(payment.id)).status === 'refunded',
      'the payment refunded',
    );
    await until(async () => (await app.kit.orderOf(order.id)).status === 'cancelled', 'the order cancelled');
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    expect(await app.kit.chargeOf(payment)).toMatchObject({ capturedAmount: total, refundedAmount: total });
    expect((await pspRefunds(payment)).map(([, amount]) => amount).sort()).toEqual([600, total - 600].sort());
  }, 60_000);
});

// Nobody sends the checkout's refunds an Idempotency-Key: each of its retries (the attempts of a
// run, the runs its watchdog makes, the refund's own recheck) must ask under the refund key it
// asked under before, or a refund whose answer was lost would be made again under a new one.
describe('a cancel whose refund cannot reach the provider', () => {
  it('asks again under one refund key, attempt after attempt: the customer is refunded once', async () => {
    const { customer, order, payment } = await app.kit.completedOrder();
    const total = order.totals.total;
    const reach = await app.kit.pspUnreachable('refund');
    const cancelled = await app.kit.cancel(order.id, customer);
    expect(cancelled.status, JSON.stringify(cancelled.json)).toBeLessThan(300);
    const calls = async () => {
      const { rows } = await withSystem(app.kit.db(), (trx) =>
        sql<{ idempotency_key: string }>`select idempotency_key from payments.operations
          where payment_id = ${payment.id} and kind = 'refund' order by id`.execute(trx),
      );
      return rows.map((r) => r.idempotency_key);
    };
    // A whole run's attempts failed, and the refund's recheck asked as well.
    await until(
      async () => (await app.kit.failedUndoings(order.id)).failed >= 3 && (await calls()).length >= 4,
      'the refund asked again and again',
    );
    await reach();

    await until(async () => (await app.kit.orderOf(order.id)).status === 'cancelled', 'the order cancelled');
    await until(
      async () => (await app.kit.paymentOf(payment.id)).status === 'refunded',
      'the payment refunded',
    );
    const key = `order-${order.id}-refund`;
    expect(new Set(await calls())).toEqual(new Set([`refund:${payment.id}:${key}`]));
    const { rows: refunds } = await withSystem(app.kit.db(), (trx) =>
      sql<{ refund_key: string; amount: string | number; status: string }>`
        select refund_key, amount, status from payments.refunds where payment_id = ${payment.id}`.execute(
        trx,
      ),
    );
    expect(refunds.map((r) => [r.refund_key, Number(r.amount), r.status])).toEqual([
      [key, total, 'succeeded'],
    ]);
    expect(await pspRefunds(payment)).toEqual([[`refund:${payment.id}:${key}`, total]]);
    expect(await app.kit.chargeOf(payment)).toMatchObject({ capturedAmount: total, refundedAmount: total });
    expect(await app.kit.orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
  }, 60_000);
});
