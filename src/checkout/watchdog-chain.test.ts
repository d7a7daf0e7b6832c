import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { until } from './checkout-test-fixtures.ts';
import { refundApp } from './refund-test-fixtures.ts';

// A saga has one watchdog at a time: a cancel of a completed order writes one, and a watchdog the
// checkout wrote before (still to come when the cancel came) ends when it finds it is not the
// saga's. Otherwise both went on, and a compensation that kept failing put two watchdogs of one
// saga in the dead letters (two critical exceptions for one order). Over real HTTP, on each database.

// The watchdog comes 3 s after a step began; the operator's retries of it are few and quick.
const app = refundApp('watchdog-chain-shop', {
  MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '2000',
  MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '100',
  MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '200',
  MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS: '3',
});

/** The order's watchdogs in the dead letters. */
async function deadWatchdogs(orderId: string): Promise<number> {
  const { rows } = await withSystem(app.kit.db(), (trx) =>
    sql<{ n: number }>`select count(*)::int as n from wal.messages
      where namespace = 'order-events' and headers->>'ce-type' = 'mercato.checkout.watchdog'
        and payload->>'orderId' = ${orderId} and state = 'dead'`.execute(trx),
  );
  return rows[0]!.n;
}

describe('a cancel right after the checkout, whose refund the provider keeps refusing', () => {
  it('leaves one watchdog of the saga in the dead letters, not one per watchdog ever written', async () => {
    const { customer, order, payment } = await app.kit.completedOrder();
    // The PSP refuses the refund (its books say the charge was refunded elsewhere).
    await sql`update test_psp.charges set refunded_amount = captured_amount
      where id = ${payment.providerTransactionId}`.execute(app.kit.db());
    // The checkout's last watchdog is still to come.
    expect(await app.kit.watchdogsWaiting(order.id)).toBeGreaterThan(0);
    const cancel = await app.kit.cancel(order.id, customer);
    expect(cancel.status, JSON.stringify(cancel.json)).toBe(202);

    await until(async () => (await app.kit.watchdogsWaiting(order.id)) === 0, 'every watchdog done', 60_000);
    expect(await deadWatchdogs(order.id)).toBe(1);
    expect(await app.kit.sagaOf(order.id)).toMatchObject({ status: 'compensating', step: 'authorize' });
  }, 90_000);
});
