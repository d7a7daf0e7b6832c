import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  orderOf,
  placeOrder,
  product,
  readyCart,
  send,
  startCheckoutApp,
  until,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  // A provider slower than every step's deadline: the authorization times out, and so does
  // every void of it, so the compensation cannot finish. The watchdog is Mercato's own delivery:
  // the operator's policy (MERCATO_WAL_SYSTEM_RETRY_*), not the tenant's, says how long it is retried.
  t = await startCheckoutApp({
    MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '200',
    MERCATO_TEST_PSP_LATENCY_MS: '2000',
    MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS: '2',
    MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '50',
    MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '50',
  });
  shop = await createStore(t, 'stuck-shop');
});
afterAll(() => t.close());

describe('a compensation that keeps failing', () => {
  it('lands in order-events dead letters with its saga id once the watchdog retries are spent', async () => {
    const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const item = await product(t, shop, 5);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
    const placed = await placeOrder(t, cart);
    const orderId =
      placed.json<{ id?: string; orderId?: string }>().id ?? placed.json<{ orderId: string }>().orderId;
    let dead: { attempts: number; payload: { sagaId: string; orderId: string } }[] = [];
    await until(
      async () => {
        const dlq = await send(t.app, 'GET', '/api/v1/wal/namespaces/order-events/dlq', admin);
        dead = dlq.json<{ items: typeof dead }>().items;
        return dead.some((d) => d.payload.orderId === orderId);
      },
      'the watchdog in the dead letters',
      30_000,
    );
    const letter = dead.find((d) => d.payload.orderId === orderId)!;
    // Dead after the operator's two attempts (the namespace's own policy allows ten).
    expect(letter.attempts).toBe(2);
    const saga = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
    expect(saga.json()).toMatchObject({
      id: letter.payload.sagaId,
      status: 'compensating',
      step: 'authorize',
    });
    const log = saga.json<{ steps: { step: string; action: string; status: string }[] }>().steps;
    expect(
      log.filter((s) => s.action === 'compensate' && s.status === 'failed').length,
    ).toBeGreaterThanOrEqual(3);
    // Nothing was released behind the payment's back: the order waits, unfinished, for an operator.
    expect((await orderOf(t, shop, orderId)).status).not.toBe('failed' satisfies Order['status']);
  }, 60_000);
});
