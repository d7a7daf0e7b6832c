import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer, type TestVariant } from '../cart/cart-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  orderOf,
  placeOrder,
  product,
  readyCart,
  send,
  startCheckoutApp,
  stockOf,
  until,
} from './checkout-test-fixtures.ts';
import type { RunResult } from './saga-runner.ts';
import { findSaga } from './saga-store.ts';
import type { CheckoutTrx } from './tables.ts';

type Store = Awaited<ReturnType<typeof createStore>>;

/**
 * A transaction of another connection holding `orders.history` in SHARE mode: reads of the order
 * go on, but a statement that moves it (its history insert) waits at the table, before touching
 * the order's row. Whatever the waiting transaction locked before that statement it holds meanwhile.
 */
async function holdOrderMoves(t: CheckoutTestApp): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
  await client.query('begin');
  await client.query('lock table orders.history in share mode');
  return async () => {
    await client.query('commit');
    await client.end();
  };
}

/**
 * How many sessions of this database wait for `what`: a move of an order held above, or a row's
 * lock (select ... for update: the cancel's lock of the order or the saga).
 */
async function waiting(t: CheckoutTestApp, what: 'move' | 'row'): Promise<number> {
  const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
    what === 'move'
      ? sql<{ n: number }>`
          select count(*)::int as n from pg_locks
          where locktype = 'relation' and relation = 'orders.history'::regclass and not granted
            and database = (select oid from pg_database where datname = current_database())`.execute(trx)
      : sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and wait_event in ('transactionid', 'tuple') and query ilike '%for update%'`.execute(trx),
  );
  return rows[0]!.n;
}

/** POST /orders for a new cart, which the test hook leaves paused after a step: the order's id. */
async function pausedOrder(t: CheckoutTestApp, shop: Store, item: TestVariant) {
  const customer = await newCustomer(t, shop);
  await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
  const placed = await placeOrder(t, customer);
  expect(placed.statusCode, placed.body).toBe(202);
  return { orderId: placed.json<Order>().id };
}

/**
 * Runs the paused saga on, as the runner that paused it (its lease's owner): no other runner (a
 * cancel's) takes it meanwhile. Settles to the run's result or its error.
 */
async function resume(t: CheckoutTestApp, shop: Store, orderId: string): Promise<RunResult | Error> {
  const saga = (await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
    findSaga(trx as CheckoutTrx, { orderId }),
  ))!;
  const order = await orderOf(t, shop, orderId);
  return t.checkout
    .run(shop.id, saga.id, { owner: saga.leaseOwner!, saga, order, begun: { saga } })
    .catch((error: Error) => error);
}

/**
 * The interleaving: while holdOrderMoves keeps the saga's transaction waiting at its order's move, a
 * cancel is sent and left to take what it can (it answers, or waits for a row); then the move
 * goes on. Returns the cancel's answer and the run's outcome.
 */
async function meet(
  t: CheckoutTestApp,
  release: () => Promise<void>,
  run: Promise<RunResult | Error>,
  cancel: () => Promise<LightMyRequestResponse>,
) {
  await until(
    async () => (await waiting(t, 'move')) === 1,
    "the saga's transaction waiting at the order's move",
  );
  let answered = false;
  const cancelled = cancel().finally(() => {
    answered = true;
  });
  await until(
    async () => answered || (await waiting(t, 'row')) >= 1,
    'the cancel answered or waiting for a row',
  );
  await release();
  return { cancel: await cancelled, run: await run };
}

async function ledgerOf(t: CheckoutTestApp, shop: Store, orderId: string) {
  return (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
    c.idempotencyKey.includes(orderId),
  );
}

// A cancel locks the order, then its saga. A run's transaction that writes both locks them in that
// order too: one that held the saga while it waited for the order deadlocked with such a cancel
// (PostgreSQL's 40P01: the cancel answered 503, or the run failed and waited for the watchdog).
// PGlite has one session, so two transactions never wait for each other there: the meetings are
// PostgreSQL's; a resumed run's locks are taken on both.
const postgres = testDatabaseKind() === 'postgres';

describe('a cancel meeting the saga’s transactions', () => {
  describe.runIf(postgres)('paused after authorize (PostgreSQL)', () => {
    let t: CheckoutTestApp;
    let shop: Store;
    beforeAll(async () => {
      // POST /orders waits for the run however slow the machine; the watchdog stays out of the way.
      t = await startCheckoutApp({
        MERCATO_TEST_PAUSE_AFTER_STEP: 'authorize',
        MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '60000',
      });
      shop = await createStore(t, 'lock-order-authorized-shop');
    });
    afterAll(() => t.close());

    it('a second cancel meeting the last transaction of the undoing waits for it: cancelled once, voided, no 503', async () => {
      const item = await product(t, shop, 4);
      const { orderId } = await pausedOrder(t, shop, item);
      const first = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, {
        reason: 'fraud check',
      });
      expect(first.statusCode, first.body).toBe(202);
      // The compensations (void, stock released) go through; the last transaction, which cancels
      // the order, waits at its move.
      const release = await holdOrderMoves(t);
      const outcome = await meet(t, release, resume(t, shop, orderId), () =>
        send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, { reason: 'again' }),
      );
      expect(outcome.run).toMatchObject({ state: 'stopped', saga: { status: 'cancelled' } });
      // The second cancel waited for the order the saga cancelled: nothing left to cancel.
      expect([outcome.cancel.statusCode, outcome.cancel.json().code]).toEqual([409, 'ILLEGAL_TRANSITION']);
      expect(await orderOf(t, shop, orderId)).toMatchObject({
        status: 'cancelled',
        paymentStatus: 'voided',
        cancelReason: 'fraud check',
      });
      expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
      expect((await ledgerOf(t, shop, orderId)).map((c) => [c.status, c.capturedAmount])).toEqual([
        ['voided', 0],
      ]);
    });

    it('a cancel meeting the capture’s outcome is kept: the order completes, then is refunded and cancelled', async () => {
      const item = await product(t, shop, 4);
      const { orderId } = await pausedOrder(t, shop, item);
      // The run commits the stock and captures; the transaction with the capture's answer, which
      // completes the order, waits at its move.
      const release = await holdOrderMoves(t);
      const outcome = await meet(t, release, resume(t, shop, orderId), () =>
        send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, { reason: 'too late' }),
      );
      expect(outcome.cancel.statusCode, outcome.cancel.body).toBe(202);
      expect(outcome.run).toMatchObject({ state: 'stopped', saga: { status: 'cancelled' } });
      expect(await orderOf(t, shop, orderId)).toMatchObject({
        status: 'cancelled',
        paymentStatus: 'refunded',
        cancelReason: 'too late',
      });
      expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
      const charges = await ledgerOf(t, shop, orderId);
      expect(charges).toHaveLength(1);
      expect(charges[0]).toMatchObject({
        capturedAmount: charges[0]!.amount,
        refundedAmount: charges[0]!.amount,
      });
    });
  });

  describe('paused after reserve', () => {
    let t: CheckoutTestApp;
    let shop: Store;
    beforeAll(async () => {
      t = await startCheckoutApp({
        MERCATO_TEST_PAUSE_AFTER_STEP: 'reserve',
        MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '60000',
      });
      shop = await createStore(t, 'lock-order-reserved-shop');
    });
    afterAll(() => t.close());

    it('a resumed saga runs on to its end, and a cancel then refunds the order', async () => {
      const item = await product(t, shop, 4);
      const { orderId } = await pausedOrder(t, shop, item);
      expect(await resume(t, shop, orderId)).toMatchObject({
        state: 'stopped',
        saga: { status: 'completed' },
      });
      expect(await orderOf(t, shop, orderId)).toMatchObject({
        status: 'completed',
        paymentStatus: 'captured',
      });
      const cancel = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, {});
      expect(cancel.statusCode, cancel.body).toBeLessThan(300);
      await until(
        async () => (await orderOf(t, shop, orderId)).status === 'cancelled',
        'the order cancelled',
      );
      expect(await orderOf(t, shop, orderId)).toMatchObject({ paymentStatus: 'refunded' });
      expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
    });

    it.runIf(postgres)(
      'a cancel meeting the start of a resumed step waits for it: the authorization is voided, the order cancelled, no 503',
      async () => {
        const item = await product(t, shop, 4);
        const { orderId } = await pausedOrder(t, shop, item);
        // The resumed run's first transaction starts the authorization: it moves the order to
        // payment_processing, and waits there.
        const release = await holdOrderMoves(t);
        const outcome = await meet(t, release, resume(t, shop, orderId), () =>
          send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, { reason: 'changed plans' }),
        );
        // Asked while the step runs: promised, and seen at the authorization's outcome.
        expect(outcome.cancel.statusCode, outcome.cancel.body).toBe(202);
        expect(outcome.run).toMatchObject({ state: 'stopped', saga: { status: 'cancelled' } });
        expect(await orderOf(t, shop, orderId)).toMatchObject({
          status: 'cancelled',
          paymentStatus: 'voided',
          cancelReason: 'changed plans',
        });
        expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
        expect((await ledgerOf(t, shop, orderId)).map((c) => [c.status, c.capturedAmount])).toEqual([
          ['voided', 0],
        ]);
      },
    );
  });
});
