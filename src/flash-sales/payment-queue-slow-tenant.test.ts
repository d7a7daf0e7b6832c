import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf } from '../checkout/checkout-test-fixtures.ts';
import { until } from '../platform/testing/index.ts';
import { createBreakers } from './breakers.ts';
import { type FlashTestApp, flashDeps, silent, startFlashApp } from './flash-test-fixtures.ts';
import { createPaymentQueue } from './payment-queue.ts';
import { giveTokens, payLaterAdmissions } from './queue-test-fixtures.ts';

/** Where a saga the queue ran has ended. */
const ENDED = ['completed', 'failed', 'cancelled'];

let t: FlashTestApp;
let shops: Shop[];
/** Each test's pay-later admissions, made before the app's own queue stops: the slow tenant's and the other's. */
let first: { hanging: string[]; paid: string };
let second: { hanging: string[]; paid: string };

beforeAll(async () => {
  // A hanging provider call (tok_hang) times out after 8 s: the slow tenant's sagas end then.
  t = await startFlashApp({ MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '8000' });
  shops = [await createShop(t, 'fs-queue-slow'), await createShop(t, 'fs-queue-waiting')];
  // By tenant id, the order the queue's rounds list them in: the slow one first.
  shops.sort((a, b) => (a.id < b.id ? -1 : 1));
  const [slow, waiting] = shops as [Shop, Shop];
  first = {
    hanging: await payLaterAdmissions(t, slow, 3),
    paid: (await payLaterAdmissions(t, waiting, 1))[0]!,
  };
  second = {
    hanging: await payLaterAdmissions(t, slow, 2),
    paid: (await payLaterAdmissions(t, waiting, 1))[0]!,
  };
  // The app's own queue stops: only the queue under test runs from here on.
  await t.flashSales.stop?.();
}, 120_000);
afterAll(() => t?.close());

/** Polls until the waiting tenant's order ends or one of the slow tenant's does: their statuses then. */
async function firstToEnd(slow: Shop, hanging: string[], waiting: Shop, paid: string) {
  let paidStatus = 'created';
  let slowStatuses: string[] = [];
  for (let i = 0; i < 200; i++) {
    paidStatus = (await orderOf(t, waiting, paid)).status;
    slowStatuses = await Promise.all(hanging.map(async (id) => (await orderOf(t, slow, id)).status));
    if (ENDED.includes(paidStatus) || slowStatuses.some((s) => ENDED.includes(s))) break;
    await sleep(100);
  }
  return { paidStatus, slowStatuses };
}

describe('the payment queue while one tenant’s payments hang at the provider', () => {
  it('pays another tenant’s order meanwhile (it waited until every saga of the slow batch had ended)', async () => {
    const [slow, waiting] = shops as [Shop, Shop];
    const { hanging, paid } = first;
    await giveTokens(t, hanging, 'tok_hang');
    await giveTokens(t, [paid], 'tok_visa');
    const queue = createPaymentQueue(flashDeps(t), createBreakers(), silent);
    let seen: { paidStatus: string; slowStatuses: string[] };
    try {
      queue.kick();
      seen = await firstToEnd(slow, hanging, waiting, paid);
    } finally {
      await queue.close();
    }
    const { paidStatus, slowStatuses } = seen;
    expect(paidStatus).toBe('completed');
    // Seen after the paid order: the slow tenant's payments were still out at the provider.
    expect(slowStatuses.filter((s) => ENDED.includes(s))).toEqual([]);
    // close() waited for them: they have ended (timed out) by now.
    for (const id of hanging) expect(ENDED).toContain((await orderOf(t, slow, id)).status);
  }, 60_000);

  it('pays an order queued while the slow tenant’s batch is out (it waited for that batch to end)', async () => {
    const [slow, waiting] = shops as [Shop, Shop];
    const { hanging, paid } = second;
    await giveTokens(t, hanging, 'tok_hang');
    const queue = createPaymentQueue(flashDeps(t), createBreakers(), silent);
    let seen: { paidStatus: string; slowStatuses: string[] };
    try {
      queue.kick();
      await until(
        async () =>
          (await Promise.all(hanging.map(async (id) => (await orderOf(t, slow, id)).status))).every(
            (s) => s === 'payment_processing',
          ),
        'the slow tenant’s payments to be out at the provider',
      );
      // Queued now, with nothing else to take: the queue is waiting on the slow batch.
      await giveTokens(t, [paid], 'tok_visa');
      queue.kick();
      seen = await firstToEnd(slow, hanging, waiting, paid);
    } finally {
      await queue.close();
    }
    expect(seen.paidStatus).toBe('completed');
    expect(seen.slowStatuses.filter((s) => ENDED.includes(s))).toEqual([]);
  }, 60_000);
});
