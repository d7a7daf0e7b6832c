import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CheckoutTestApp,
  createStore,
  placeOrder,
  product,
  readyCart,
  send,
  startCheckoutApp,
  until,
} from '../../checkout/checkout-test-fixtures.ts';
import { login } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import { newSecret, type Receiver, startReceiver } from './receiver.ts';

// A tenant admin sets the retry policy of its system namespaces (for its own webhooks): that
// policy must not decide how Mercato's own deliveries there are retried. The checkout's watchdog
// (an internal target on the tenant's order-events) is what resumes or compensates a stuck saga:
// given up after one attempt, or postponed by a day, the order would stay stuck with the payment
// authorized.

type Store = Awaited<ReturnType<typeof createStore>>;
type Row = { id: string; state: string; attempts: number; due_at: Date | string };

let t: CheckoutTestApp;
const receivers: Receiver[] = [];

beforeAll(async () => {
  receivers.push(await startReceiver(), await startReceiver());
  const ports = receivers.map((r) => `127.0.0.1:${new URL(r.url).port}`).join(',');
  // A provider slower than every step's deadline: the authorization times out, and so does every
  // void of it, so the compensation cannot finish and the watchdog's handler fails (watchdog.ts).
  t = await startCheckoutApp({
    MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '200',
    MERCATO_TEST_PSP_LATENCY_MS: '2000',
    MERCATO_WAL_PRIVATE_TARGETS: ports,
  });
});
afterAll(async () => {
  await t?.close();
  for (const receiver of receivers) await receiver.close();
});

/**
 * A store whose admin set `retry` on order-events, with a webhook on the order's and the
 * watchdog's events that always fails with `status`.
 */
async function hostileStore(
  slug: string,
  receiver: Receiver,
  status: number,
  retry: Record<string, unknown>,
) {
  const shop = await createStore(t, slug);
  const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  receiver.failNext(1_000_000, status);
  const hook = { name: 'tenant-hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 };
  const put = await send(t.app, 'PUT', '/api/v1/wal/namespaces/order-events', admin, {
    retry,
    targets: [{ ...hook, types: ['mercato.order.*', 'mercato.checkout.*'] }],
  });
  expect(put.statusCode, put.body).toBe(200);
  const got = await send(t.app, 'GET', '/api/v1/wal/namespaces/order-events', admin);
  expect(got.json<{ retry: unknown }>().retry).toMatchObject(retry);
  return shop;
}

/** Places an order whose saga gets stuck compensating. */
async function stuckCheckout(shop: Store) {
  const cart = await readyCart(t, shop, [{ variant: await product(t, shop, 5), quantity: 1 }]);
  const placed = await placeOrder(t, cart);
  expect(placed.statusCode, placed.body).toBeLessThan(300);
}

/** The watchdog messages of the shop on which the watchdog's handler itself failed. */
const failedWatchdogs = (shop: Store) =>
  withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const { rows } = await sql<Row>`
      select m.id, m.state, m.attempts, m.due_at from wal.messages m
      where m.namespace = 'order-events' and exists (select 1 from wal.attempts a
        where a.message_pk = m.id and a.target = 'checkout.watchdog' and a.outcome = 'failed')
      order by m.id`.execute(trx);
    return rows;
  });

/** How many times the watchdog's handler ran on the message. */
const watchdogAttempts = (shop: Store, id: string) =>
  withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from wal.attempts
      where message_pk = ${id} and target = 'checkout.watchdog'`.execute(trx);
    return rows[0]!.n;
  });

/**
 * Waits for the first watchdog whose handler failed to be either run again, dead, or put off for
 * more than an hour; returns how many times its handler ran.
 */
async function watchdogRuns(shop: Store): Promise<number> {
  let runs = 0;
  await until(
    async () => {
      const row = (await failedWatchdogs(shop))[0];
      if (!row) return false;
      runs = await watchdogAttempts(shop, row.id);
      const farOff = new Date(row.due_at).getTime() > Date.now() + 3_600_000;
      return runs >= 2 || row.state === 'dead' || (row.state === 'retrying' && farOff);
    },
    'a watchdog whose handler failed to be retried, dead or put off',
    45_000,
  );
  return runs;
}

describe("Mercato's own deliveries on a system namespace", () => {
  it("retry the watchdog by Mercato's policy when the tenant set one attempt a day apart", async () => {
    const shop = await hostileStore('one-attempt', receivers[0]!, 503, {
      strategy: 'fixed',
      baseDelayMs: 86_400_000,
      maxDelayMs: 86_400_000,
      maxAttempts: 1,
      jitter: 0,
    });
    await stuckCheckout(shop);
    expect(await watchdogRuns(shop)).toBeGreaterThanOrEqual(2);
    // The tenant's policy still governs its own webhook: the order's events, which only the
    // webhook failed (503), died after the one attempt the tenant allows.
    let own: { attempts: number }[] = [];
    await until(async () => {
      own = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
        const { rows } = await sql<{ attempts: number }>`
          select attempts from wal.messages
          where namespace = 'order-events' and state = 'dead' and headers->>'ce-type' like 'mercato.order.%'`.execute(
          trx,
        );
        return rows;
      });
      return own.length > 0;
    }, 'an order event in the dead letters');
    expect(own.map((m) => m.attempts)).toEqual(own.map(() => 1));
  }, 90_000);

  it("retry the watchdog though the tenant's webhook answers every watchdog event with a 400", async () => {
    const shop = await hostileStore('refusing-hook', receivers[1]!, 400, { maxAttempts: 10 });
    await stuckCheckout(shop);
    expect(await watchdogRuns(shop)).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
