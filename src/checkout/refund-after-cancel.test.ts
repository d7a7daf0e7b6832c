import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { testDatabaseKind } from '../platform/testing/index.ts';
import { until } from './checkout-test-fixtures.ts';
import { refundApp } from './refund-test-fixtures.ts';

// A cancelled order keeps no money of its customer's, whatever a staff refund of it comes to
// after the cancel: the checkout gives back what a refund refused by the provider left held.
// Over real HTTP (a listening server and fetch), on each database.

// A short step deadline: the watchdog, which resumes a saga whose run was lost, comes soon. The
// operator's retries of Mercato's own deliveries (the watchdog's) are quick.
const app = refundApp('refund-after-cancel-shop', {
  MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1000',
  MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '100',
  MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '500',
});

describe('a staff refund of a cancelled order that the provider refuses', () => {
  it('is given back by the checkout: the payment ends refunded in full, the order cancelled', async () => {
    const { customer, order, payment } = await app.kit.completedOrder();
    const total = order.totals.total;

    // Staff refund 600 of it; the provider cannot be reached for it, so the refund stays pending,
    // holding 600 (its recheck asks in vain meanwhile).
    const staffRefund = await app.kit.staffRefundCut(payment, 600, 'staff-damaged');

    // The order is cancelled: its checkout gives back all the pending refund leaves.
    const cancelled = await app.kit.cancel(order.id, customer);
    expect(cancelled.status, JSON.stringify(cancelled.json)).toBe(200);
    expect(cancelled.json).toMatchObject({ status: 'cancelled' });
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({
      status: 'partially_refunded',
      refundedAmount: total - 600,
    });

    // The provider refuses it, asked again by staff with the same refundKey (or by the refund's
    // recheck, just before): the refund failed.
    await staffRefund.refuse();
    const refused = await app.kit.staffRefund(payment, 600, 'staff-damaged');
    expect(refused.status, JSON.stringify(refused.json)).toBe(502);
    expect(refused.json).toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR' });

    // The checkout gives the 600 back under its next key: nothing of the customer's stays held.
    await until(
      async () => (await app.kit.paymentOf(payment.id)).status === 'refunded',
      'the payment refunded',
    );
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    await until(
      async () => (await app.kit.sagaOf(order.id)).status === 'cancelled',
      'the saga finished again',
    );
    expect(await app.kit.orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    const charge = await app.kit.chargeOf(payment);
    expect(charge).toMatchObject({ capturedAmount: total, refundedAmount: total });
    const { rows } = await sql<{
      idempotency_key: string;
      amount: string | number;
      result: { status: string };
    }>`
      select idempotency_key, amount, result from test_psp.operations
      where kind = 'refund' and charge_id = ${charge.id} and result->>'status' = 'refunded'
      order by created_at`.execute(app.kit.db());
    expect(rows.map((r) => [r.idempotency_key, Number(r.amount)])).toEqual([
      [`refund:${payment.id}:order-${order.id}-refund`, total - 600],
      [`refund:${payment.id}:order-${order.id}-refund-2`, 600],
    ]);
    // The saga's log shows the give-back done again after the refusal.
    const saga = await app.kit.sagaOf(order.id);
    const givenBack = saga.steps.filter(
      (s) => s.step === 'authorize' && s.action === 'compensate' && s.status === 'succeeded',
    );
    expect(givenBack).toHaveLength(2);
  }, 60_000);

  it('leaves a completed order alone: staff refunds of a live order are staff’s', async () => {
    const { payment } = await app.kit.completedOrder();
    await app.kit.pspRefuses(payment, 'staff-live', 300);
    const refused = await app.kit.staffRefund(payment, 300, 'staff-live', 'goodwill');
    expect(refused.status, JSON.stringify(refused.json)).toBe(502);
    // The checkout has taken the refusal's event, and changed nothing.
    await app.kit.refusalDelivered(payment);
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'completed', refundedAmount: 0 });
    expect(await app.kit.orderOf(payment.orderId)).toMatchObject({ status: 'completed' });
    expect((await app.kit.sagaOf(payment.orderId)).status).toBe('completed');
  });
});

// PostgreSQL only: another session holds the run between two of its transactions (PGlite has one).
describe.runIf(testDatabaseKind() === 'postgres')('a staff refund refused while the cancel is undone', () => {
  it('is given back before the order closes: the refusal came after the give-back, before the order was cancelled', async () => {
    const { customer, order, payment } = await app.kit.completedOrder();
    const total = order.totals.total;
    const staffRefund = await app.kit.staffRefundCut(payment, 500, 'staff-during');
    // Stock movements wait (the ledger held in SHARE mode): the run stops in undoing reserve, after
    // it gave back all the pending refund leaves, before it closes the order.
    const client = new pg.Client({ connectionString: app.t.databaseUrl });
    await client.connect();
    await client.query('begin');
    await client.query('lock table inventory.ledger in share mode');
    try {
      const cancel = await app.kit.cancel(order.id, customer);
      expect(cancel.status, JSON.stringify(cancel.json)).toBe(202);
      await until(async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks
          where locktype = 'relation' and relation = 'inventory.ledger'::regclass and not granted`.execute(
          app.kit.db(),
        );
        return rows[0]!.n > 0;
      }, 'the run waiting to put the stock back');
      expect(await app.kit.paymentOf(payment.id)).toMatchObject({
        status: 'partially_refunded',
        refundedAmount: total - 500,
      });
      // Now the provider refuses staff's refund; the checkout takes the event while the saga is
      // still undone (compensating), and leaves it to the run.
      await staffRefund.refuse();
      const refused = await app.kit.staffRefund(payment, 500, 'staff-during');
      expect(refused.status, JSON.stringify(refused.json)).toBe(502);
      await app.kit.refusalDelivered(payment);
      expect((await app.kit.sagaOf(order.id)).status).toBe('compensating');
    } finally {
      await client.query('commit');
      await client.end();
    }
    // The run, before it closes the order, finds the money held again and gives it back.
    await until(async () => (await app.kit.sagaOf(order.id)).status === 'cancelled', 'the saga finished');
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    expect(await app.kit.orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    expect(await app.kit.chargeOf(payment)).toMatchObject({ capturedAmount: total, refundedAmount: total });
  }, 60_000);
});

describe('a give-back the provider refuses', () => {
  it('is retried under a new refund key: once the provider takes it, the order ends cancelled and refunded', async () => {
    const { customer, order, payment } = await app.kit.completedOrder();
    const total = order.totals.total;
    // The PSP refuses the checkout's refund of it (refunded elsewhere, its books say).
    await sql`update test_psp.charges set refunded_amount = captured_amount
      where id = ${payment.providerTransactionId}`.execute(app.kit.db());
    // A cancel some time after the checkout: the order's watchdogs have found its saga completed.
    await until(
      async () => (await app.kit.watchdogsWaiting(order.id)) === 0,
      'the checkout’s watchdogs done',
    );
    const cancel = await app.kit.cancel(order.id, customer);
    expect(cancel.status, JSON.stringify(cancel.json)).toBeLessThan(300);
    // The cancel's run and the one it kicks each spend their attempts, and give the saga up.
    await until(async () => {
      const { failed, idle } = await app.kit.failedUndoings(order.id);
      return failed >= 6 && idle;
    }, 'the refund refused by the runs the cancel started');
    // Visible meanwhile: the saga compensates, the payment holds its money, the order is not cancelled.
    expect(await app.kit.sagaOf(order.id)).toMatchObject({ status: 'compensating', step: 'authorize' });
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'completed', refundedAmount: 0 });
    expect((await app.kit.orderOf(order.id)).status).toBe('completed');

    // The PSP's books are put right: the watchdog (armed by the cancel) runs the saga again,
    // which gives the money back under a key the provider has not refused.
    await sql`update test_psp.charges set refunded_amount = 0
      where id = ${payment.providerTransactionId}`.execute(app.kit.db());
    await until(
      async () => (await app.kit.orderOf(order.id)).status === 'cancelled',
      'the order cancelled',
      60_000,
    );
    expect(await app.kit.orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    expect(await app.kit.chargeOf(payment)).toMatchObject({ capturedAmount: total, refundedAmount: total });
    expect((await app.kit.sagaOf(order.id)).status).toBe('cancelled');
  }, 90_000);
});
