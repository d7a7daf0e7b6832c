import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { callServer } from '../cli/mercato-process.ts';
import { withSystem } from '../platform/db/index.ts';
import { crashServers, postgresClone, testDatabaseKind, until } from '../platform/testing/index.ts';

const STEP_TIMEOUT_MS = 3000;
/**
 * Where each server dies: after each step but the last (paused there by the test hook), and in
 * the middle of the provider's authorization (slowed down by the test PSP's latency).
 */
const CRASHES = [
  { after: 'validate' },
  { after: 'reserve' },
  { after: 'authorize' },
  { during: 'authorize' },
] as const;

/**
 * The checkout's servers on a PostgreSQL clone of their own, and the trigger (if any) the test
 * put on the PSP's operations dropped after them.
 */
function checkoutServers(trigger?: string) {
  return crashServers({
    storage: postgresClone,
    env: {
      MERCATO_CHECKOUT_STEP_TIMEOUT_MS: String(STEP_TIMEOUT_MS),
      MERCATO_CHECKOUT_INLINE_MS: '300',
    },
    async afterServersStopped(storage) {
      if (!trigger) return;
      await sql`drop trigger if exists ${sql.id(trigger)} on test_psp.operations`
        .execute(storage.owner!.kysely)
        .catch(() => {});
    },
  });
}

/** What makes a server stop where `crash` says: the test hook's pause, or the test PSP's latency. */
function crashEnv(crash: (typeof CRASHES)[number]) {
  return 'after' in crash
    ? { MERCATO_TEST_PAUSE_AFTER_STEP: crash.after }
    : { MERCATO_TEST_PSP_LATENCY_MS: '60000' };
}

const call = callServer;

// kill -9 of the real server with a checkout paused after each step in turn: after the restarts
// every order ends completed, failed or cancelled, no stock stays held for a finished order, and
// the test PSP's ledger shows one charge per order, captured only for completed orders.
describe.runIf(testDatabaseKind() === 'postgres')(
  'checkout survives kill -9 between steps (PostgreSQL)',
  () => {
    const crash = checkoutServers();

    it('resumes or compensates every saga after each crash: no stock held, no double or stray capture', async () => {
      const orders: string[] = [];
      let staff: Record<string, string> = {};
      let base = '';
      for (const at of CRASHES) {
        const { server, base: url } = await crash.start(crashEnv(at));
        const [step, status] = 'after' in at ? [at.after, 'succeeded'] : [at.during, 'started'];
        base = url;
        staff = await crash.adminHeaders(base);
        const orderId = await placeDemoOrder(base, `crash-${JSON.stringify(at)}`);
        orders.push(orderId);
        await until(
          async () => {
            const saga = await call(base, 'GET', `/api/v1/orders/${orderId}/saga`, staff);
            return saga.body.steps.some(
              (s: { step: string; action: string; status: string }) =>
                s.step === step && s.action === 'invoke' && s.status === status,
            );
          },
          `the saga to reach ${step} ${status}`,
          60_000,
        );
        expect(await crash.kill9(server)).toBe('SIGKILL');
      }

      const last = await crash.start();
      base = last.base;
      staff = await crash.adminHeaders(base);
      const final: Record<string, string> = {};
      await until(
        async () => {
          for (const id of orders)
            final[id] = (await call(base, 'GET', `/api/v1/orders/${id}`, staff)).body.status;
          return Object.values(final).every((s) => ['completed', 'failed', 'cancelled'].includes(s));
        },
        'every order to finish',
        90_000,
      );

      // The one killed mid-authorization timed out (what the PSP did is unknown): it compensated.
      expect(final[orders[3]!]).toBe('failed');
      const db = crash.owner().kysely;
      const held = await withSystem(db, (trx) =>
        sql<{ reserved: string }>`select coalesce(sum(reserved), 0) as reserved from inventory.items`.execute(
          trx,
        ),
      );
      // No order is open, so no stock may stay reserved.
      expect(Number(held.rows[0]!.reserved)).toBe(0);
      const charges = await withSystem(db, (trx) =>
        sql<{ key: string; captured: string; captures: string }>`
        select c.idempotency_key as key, c.captured_amount as captured,
          (select count(*) from test_psp.operations o where o.charge_id = c.id and o.kind = 'capture') as captures
        from test_psp.charges c`.execute(trx),
      );
      for (const id of orders) {
        const mine = charges.rows.filter((c) => c.key.includes(id));
        expect(mine.length).toBeLessThanOrEqual(1);
        for (const charge of mine) {
          expect(Number(charge.captures)).toBeLessThanOrEqual(1);
          if (final[id] !== 'completed') expect(Number(charge.captured)).toBe(0);
          else expect(Number(charge.captured)).toBeGreaterThan(0);
        }
      }
      expect(await crash.stop(last.server), last.server.output()).toBe(0);
    }, 300_000);
  },
);

/** A guest's order of the first demo variant in stock, shipped to Berlin, paid with tok_visa. */
async function placeDemoOrder(base: string, key: string) {
  const shopper = { 'x-tenant': 'demo' };
  const created = await call(base, 'POST', '/api/v1/cart', shopper, { currency: 'EUR' });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const guest = { ...shopper, 'x-cart-token': created.body.token as string };
  const products = await call(base, 'GET', '/api/v1/products?limit=20', shopper);
  let added = 0;
  for (const item of products.body.items as { id: string }[]) {
    const detail = await call(base, 'GET', `/api/v1/products/${item.id}`, shopper);
    for (const variant of detail.body.variants as { id: string }[]) {
      const answer = await call(base, 'POST', '/api/v1/cart/items', guest, {
        variantId: variant.id,
        quantity: 1,
      });
      if (answer.status < 300) added += 1;
      if (added > 0) break;
    }
    if (added > 0) break;
  }
  expect(added).toBe(1);
  const shipping = {
    recipient: 'Erika Muster',
    line1: 'Unter den Linden 1',
    city: 'Berlin',
    postalCode: '10117',
    country: 'DE',
  };
  expect((await call(base, 'PUT', '/api/v1/cart/addresses', guest, { shipping })).status).toBe(200);
  const options = await call(base, 'GET', '/api/v1/cart/shipping-options', guest);
  const shippingOptionId = options.body.items[0].id as string;
  expect((await call(base, 'PUT', '/api/v1/cart/shipping-option', guest, { shippingOptionId })).status).toBe(
    200,
  );
  const placed = await call(
    base,
    'POST',
    '/api/v1/orders',
    { ...guest, 'idempotency-key': key },
    { payment: { token: 'tok_visa' } },
  );
  expect(placed.status, JSON.stringify(placed.body)).toBeLessThan(300);
  return placed.body.id as string;
}

// kill -9 of the real server while the refund of a cancelled order is at the provider: the PSP
// makes the refund (its statement commits after the server died), Mercato never records it. After
// a restart the cancel is finished: the refund asked again under its key finds the PSP's answer.
describe.runIf(testDatabaseKind() === 'postgres')(
  'a cancel survives kill -9 while its refund is at the provider (PostgreSQL)',
  () => {
    const crash = checkoutServers('slow_refund');

    it('refunds the cancelled order once, and ends it cancelled', async () => {
      const db = crash.owner().kysely;
      const first = await crash.start();
      let base = first.base;
      let staff = await crash.adminHeaders(base);
      const orderId = await placeDemoOrder(base, 'crash-cancel');
      await until(
        async () => (await call(base, 'GET', `/api/v1/orders/${orderId}`, staff)).body.status === 'completed',
        'the order completed',
        60_000,
      );
      // Cancelled some time after its checkout: the order's own watchdogs found it completed.
      await until(
        async () => {
          const { rows } = await withSystem(db, (trx) =>
            sql<{ n: string }>`select count(*) as n from wal.messages
              where namespace = 'order-events' and headers->>'ce-type' = 'mercato.checkout.watchdog'
                and payload->>'orderId' = ${orderId} and state not in ('delivered', 'dead')`.execute(trx),
          );
          return Number(rows[0]!.n) === 0;
        },
        'the checkout’s watchdogs done',
        60_000,
      );
      const [payment] = (await call(base, 'GET', `/api/v1/payments/order/${orderId}`, staff)).body.items as {
        id: string;
        amount: number;
        providerTransactionId: string;
      }[];
      // The PSP's refund holds its statement open (and its effect uncommitted) for a while.
      await sql`create or replace function test_psp.slow() returns trigger language plpgsql as $$
        begin perform pg_sleep(3); return new; end $$`.execute(db);
      await sql`create trigger slow_refund after update on test_psp.operations for each row
        when (new.kind = 'refund') execute function test_psp.slow()`.execute(db);
      const cancel = await call(base, 'PUT', `/api/v1/orders/${orderId}/cancel`, staff, { reason: 'crash' });
      expect(cancel.status, JSON.stringify(cancel.body)).toBe(202);
      const atPsp = async () => {
        const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
          where state = 'active' and query like '%test_psp.refund(%' and pid <> pg_backend_pid()`.execute(db);
        return Number(rows[0]!.n);
      };
      await until(async () => (await atPsp()) > 0, 'the refund at the provider', 30_000);
      expect(await crash.kill9(first.server)).toBe('SIGKILL');
      // The PSP finished the refund after the server died; Mercato never recorded its answer.
      await until(async () => (await atPsp()) === 0, 'the provider done', 30_000);
      await sql`drop trigger slow_refund on test_psp.operations`.execute(db);
      const charge = async () =>
        (
          await sql<{ captured: string | number; refunded: string | number; refunds: string | number }>`
            select c.captured_amount as captured, c.refunded_amount as refunded,
              (select count(*) from test_psp.operations o
               where o.charge_id = c.id and o.kind = 'refund' and o.result->>'status' = 'refunded') as refunds
            from test_psp.charges c where c.id = ${payment!.providerTransactionId}`.execute(db)
        ).rows[0]!;
      expect(Number((await charge()).refunded)).toBe(payment!.amount);
      const recorded = await withSystem(db, (trx) =>
        sql<{ status: string }>`select status from payments.payments where id = ${payment!.id}`.execute(trx),
      );
      expect(recorded.rows[0]!.status).toBe('completed');

      const last = await crash.start();
      base = last.base;
      staff = await crash.adminHeaders(base);
      await until(
        async () => (await call(base, 'GET', `/api/v1/orders/${orderId}`, staff)).body.status === 'cancelled',
        'the order cancelled',
        60_000,
      );
      const after = await call(base, 'GET', `/api/v1/payments/${payment!.id}`, staff);
      expect(after.body).toMatchObject({ status: 'refunded', refundedAmount: payment!.amount });
      // Refunded once at the PSP: the refund asked again under its key was answered, not made again.
      const settled = await charge();
      expect([settled.captured, settled.refunded, settled.refunds].map(Number)).toEqual([
        payment!.amount,
        payment!.amount,
        1,
      ]);
      expect(await crash.stop(last.server), last.server.output()).toBe(0);
    }, 240_000);
  },
);

// kill -9 of the real server while the checkout's capture is at the provider: the PSP captures
// (its statement commits after the server died), Mercato never records it. After a restart the
// saga finds the capture past its deadline and undoes the order: the provider refuses to void a
// captured charge, so the capture is asked again by its key (answered, not made again) and
// refunded: the customer keeps no charge.
describe.runIf(testDatabaseKind() === 'postgres')(
  'a checkout survives kill -9 while its capture is at the provider (PostgreSQL)',
  () => {
    const crash = checkoutServers('slow_capture');

    it('ends the order with nothing of the customer’s held at the PSP', async () => {
      const db = crash.owner().kysely;
      // The PSP's capture holds its statement open (and its effect uncommitted) for a while.
      await sql`create or replace function test_psp.slow() returns trigger language plpgsql as $$
        begin perform pg_sleep(3); return new; end $$`.execute(db);
      await sql`create trigger slow_capture after update on test_psp.operations for each row
        when (new.kind = 'capture') execute function test_psp.slow()`.execute(db);
      const first = await crash.start();
      let base = first.base;
      const orderId = await placeDemoOrder(base, 'crash-capture');
      const atPsp = async () => {
        const { rows } = await sql<{ n: string }>`select count(*) as n from pg_stat_activity
          where state = 'active' and query like '%test_psp.capture(%' and pid <> pg_backend_pid()`.execute(
          db,
        );
        return Number(rows[0]!.n);
      };
      await until(async () => (await atPsp()) > 0, 'the capture at the provider', 60_000);
      expect(await crash.kill9(first.server)).toBe('SIGKILL');
      await until(async () => (await atPsp()) === 0, 'the provider done', 30_000);
      await sql`drop trigger slow_capture on test_psp.operations`.execute(db);
      const charge = async () =>
        (
          await sql<{ status: string; captured: string | number; refunded: string | number }>`
            select c.status, c.captured_amount as captured, c.refunded_amount as refunded
            from test_psp.charges c where c.idempotency_key = ${`authorize:order-${orderId}`}`.execute(db)
        ).rows[0]!;
      // The PSP captured; Mercato's payment still says authorized.
      expect((await charge()).status).toBe('captured');
      const recorded = await withSystem(db, (trx) =>
        sql<{
          status: string;
        }>`select status from payments.payments where key = ${`order-${orderId}`}`.execute(trx),
      );
      expect(recorded.rows[0]!.status).toBe('authorized');

      const last = await crash.start();
      base = last.base;
      const staff = await crash.adminHeaders(base);
      let status = '';
      await until(
        async () => {
          status = (await call(base, 'GET', `/api/v1/orders/${orderId}`, staff)).body.status;
          return ['completed', 'failed', 'cancelled'].includes(status);
        },
        'the order finished',
        90_000,
      );
      const [payment] = (await call(base, 'GET', `/api/v1/payments/order/${orderId}`, staff)).body.items as {
        status: string;
        amount: number;
        refundedAmount: number;
      }[];
      // Its step past its deadline, what it did unknown: the order failed, and what the PSP
      // captured (answered by the capture's key, the void refused) is refunded, all of it, once.
      expect(status).toBe('failed');
      expect(payment).toMatchObject({ status: 'refunded', refundedAmount: payment!.amount });
      const settled = await charge();
      expect(settled.status).toBe('captured');
      expect([settled.captured, settled.refunded].map(Number)).toEqual([payment!.amount, payment!.amount]);
      expect(await crash.stop(last.server), last.server.output()).toBe(0);
    }, 240_000);
  },
);
