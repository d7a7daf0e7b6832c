import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { until } from './checkout-test-fixtures.ts';
import { refundApp } from './refund-test-fixtures.ts';

// A cancel of a completed order made before the cancel wrote a watchdog left its saga
// compensating with nothing to resume it. Migration 0060 lists such sagas; the checkout, as it
// starts, gives each a watchdog, which resumes the undoing: the order ends cancelled, its payment
// refunded. Over real HTTP, on each database.

const app = refundApp('watchdog-backfill-shop', { MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1000' });

/** Migration 0060's listing of the sagas compensating, run as the migration runs it (the owner). */
async function migrationListsSagas() {
  const text = await readFile(
    new URL('../../migrations/0060_checkout_watchdog_backfill.sql', import.meta.url),
    'utf8',
  );
  const insert = text.slice(text.indexOf('insert into checkout.watchdog_backfill'));
  await sql.raw(insert).execute(app.kit.db());
}

describe('a saga an earlier release left compensating without a watchdog', () => {
  it('is given one as the checkout starts: the cancel is carried out, the customer refunded', async () => {
    const { order, payment } = await app.kit.completedOrder();
    // The checkout's watchdogs have found the saga completed and stopped.
    await until(
      async () => (await app.kit.watchdogsWaiting(order.id)) === 0,
      'the checkout’s watchdogs done',
    );
    // A cancel as the release before wrote it: the saga turned to compensating, no watchdog, and
    // the run it started lost (the process died before it undid anything).
    await withSystem(app.kit.db(), (trx) =>
      sql`update checkout.sagas set status = 'compensating', step = 'confirm', finished_at = null,
          failure = ${JSON.stringify({ reason: 'cancelled', code: 'CANCELLED', message: 'no' })}::jsonb,
          cancel_requested = ${JSON.stringify({ actor: 'customer', reason: 'no' })}::jsonb
        where order_id = ${order.id}`.execute(trx),
    );
    expect(await app.kit.watchdogsWaiting(order.id)).toBe(0);

    await migrationListsSagas();
    await app.t.checkout.start?.();

    await until(async () => (await app.kit.orderOf(order.id)).status === 'cancelled', 'the order cancelled');
    expect(await app.kit.orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    expect(await app.kit.paymentOf(payment.id)).toMatchObject({
      status: 'refunded',
      refundedAmount: order.totals.total,
    });
    expect((await app.kit.sagaOf(order.id)).status).toBe('cancelled');
    const { rows } = await withSystem(app.kit.db(), (trx) =>
      sql<{ n: number }>`select count(*)::int as n from checkout.watchdog_backfill`.execute(trx),
    );
    expect(rows[0]!.n).toBe(0);
  }, 60_000);
});
