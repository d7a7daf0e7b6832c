import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import {
  confirmPending,
  orderOf,
  placeOrder,
  product,
  readyCart,
  stockOf,
} from '../checkout/checkout-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import type { ExceptionView } from './exception-view.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { auditActions, exceptionRow, insertException } from './retry-test-fixtures.ts';

type Store = OpsTenant & { shippingOptionId: string };
type Attempt = { id: string; action: string; status: string; outcome: string | null };

let t: ExceptionsTestApp;
let shop: Store;
let other: OpsTenant;

beforeAll(async () => {
  t = await startExceptionsApp();
  const ops = await createOpsTenant(t, 'oretry-shop');
  other = await createOpsTenant(t, 'oretry-other');
  // A store that sells to Germany, as checkout's createStore makes one.
  const option = await send(t.app, 'POST', '/api/v1/shipping-options', ops.staff, {
    name: 'DHL',
    countries: ['DE'],
    prices: { EUR: 490 },
  });
  expect(option.statusCode, option.body).toBe(201);
  const tax = await send(t.app, 'POST', '/api/v1/tax-rates', ops.staff, {
    country: 'DE',
    rateBps: 1900,
    name: 'MwSt',
  });
  expect(tax.statusCode, tax.body).toBe(201);
  shop = { ...ops, shippingOptionId: option.json<{ id: string }>().id };
});
afterAll(async () => {
  await t?.close();
});

const path = (transactionId: string) => `/api/v1/exceptions/${encodeURIComponent(transactionId)}`;
const retry = (transactionId: string, body?: unknown, headers: Record<string, string> = shop.operator) =>
  send(t.app, 'POST', `${path(transactionId)}/retry`, headers, body);

/** The exception as an operator reads it, once the collector captured it. */
async function captured(transactionId: string): Promise<ExceptionView> {
  let view: ExceptionView | undefined;
  await until(async () => {
    const response = await send(t.app, 'GET', path(transactionId), shop.operator);
    if (response.statusCode === 200) view = response.json<ExceptionView>();
    return view !== undefined;
  }, `exception ${transactionId} captured`);
  return view!;
}

/** A customer's checkout of 2 of a new item (5 in stock) that fails with `token`, and its exception. */
async function failedCheckout(token: string) {
  const item = await product(t, shop, 5);
  const customer = await newCustomer(t, shop);
  await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
  const placed = await placeOrder(t, customer, token);
  expect(placed.statusCode, placed.body).toBeGreaterThanOrEqual(400);
  const { orderId } = placed.json<{ orderId: string }>();
  const transactionId = `order:${orderId}:rejected`;
  return { item, customer, orderId, transactionId, exception: await captured(transactionId) };
}

/** The tenant's ExceptionRetryCompleted events of one exception: each attempt's status. */
const retryEvents = (exceptionId: string) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ payload: unknown }>`
      select payload from wal.messages
      where tenant_id = ${shop.id} and namespace = 'exception-events'
        and headers->>'ce-type' = 'mercato.exception.retry-completed' and headers->>'ce-subject' = ${exceptionId}
      order by id`.execute(trx);
    return rows.map((r) => {
      const data = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as {
        attempt: Attempt;
      };
      return data.attempt.status;
    });
  });

describe('retrying a rejected Mercato order', () => {
  let failed: Awaited<ReturnType<typeof failedCheckout>>;
  beforeAll(async () => {
    failed = await failedCheckout('tok_processing_error');
  });

  it('captures a checkout that failed on a payment provider error as retryable, naming its order', () => {
    expect(failed.exception).toMatchObject({
      interfaceType: 'ORDER',
      category: 'SYSTEM_ERROR',
      retryable: true,
      status: 'NEW',
      orderId: failed.orderId,
      sourceRef: { kind: 'order', orderId: failed.orderId },
    });
    expect(failed.exception.reason).toMatch(/^payment_error:/);
  });

  it('answers 409 NOT_RETRYABLE without a payment token, saying one is needed, and records nothing', async () => {
    for (const body of [undefined, {}]) {
      const response = await retry(failed.transactionId, body);
      expect(response.statusCode, response.body).toBe(409);
      expect(response.json().code).toBe('NOT_RETRYABLE');
      expect(response.json().detail).toMatch(/payment token.*single-use/);
    }
    expect((await exceptionRow(t, shop.id, failed.transactionId)).retry_count).toBe(0);
  });

  it('answers 400 VALIDATION_FAILED naming the field for a malformed payment, and for a payment elsewhere', async () => {
    const cases: [unknown, string][] = [
      [{ payment: { token: '' } }, '/payment/token'],
      [{ payment: { token: 'x'.repeat(201) } }, '/payment/token'],
      [{ payment: { token: 'tok visa' } }, '/payment/token'],
      [{ payment: { token: 'tok_visa', provider: 'Stripe!' } }, '/payment/provider'],
      [{ payment: { token: 'tok_visa', card: '4242424242424242' } }, '/payment'],
      [{ payment: {} }, '/payment'],
      [{ pay: 1 }, ''],
    ];
    for (const [body, pointer] of cases) {
      const response = await retry(failed.transactionId, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().code).toBe('VALIDATION_FAILED');
      const pointers = response.json<{ errors: { pointer: string }[] }>().errors.map((e) => e.pointer);
      expect(
        pointers.some((p) => p.startsWith(pointer)),
        `${JSON.stringify(body)}: ${pointers}`,
      ).toBe(true);
    }
    await insertException(t, shop.id, {
      transactionId: 'oretry-source',
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: null },
    });
    // A provider Mercato does not have is named where the body has it; nothing is recorded.
    const unknown = await retry(failed.transactionId, { payment: { token: 'tok_visa', provider: 'stripe' } });
    expect(unknown.statusCode, unknown.body).toBe(400);
    expect(unknown.json().errors[0].pointer).toBe('/payment/provider');
    const elsewhere = await retry('oretry-source', { payment: { token: 'tok_visa' } });
    expect(elsewhere.statusCode, elsewhere.body).toBe(400);
    expect(elsewhere.json().errors[0].pointer).toBe('/payment');
    expect((await exceptionRow(t, shop.id, failed.transactionId)).retry_count).toBe(0);
  });

  it("gives another tenant's operator 404 and is for operators only: no order is made", async () => {
    const body = { payment: { token: 'tok_visa' } };
    expect((await retry(failed.transactionId, body, other.operator)).statusCode).toBe(404);
    expect((await retry(failed.transactionId, body, other.admin)).statusCode).toBe(404);
    for (const headers of [shop.staff, failed.customer, shop.writer]) {
      expect((await retry(failed.transactionId, body, headers)).statusCode).toBe(403);
    }
    expect((await retry(failed.transactionId, body, {})).statusCode).toBe(401);
    expect((await exceptionRow(t, shop.id, failed.transactionId)).retry_count).toBe(0);
    const orders = await send(t.app, 'GET', '/api/v1/orders', failed.customer);
    expect(orders.json<{ items: Order[] }>().items.map((o) => o.id)).toEqual([failed.orderId]);
  });

  it('with tok_visa makes one new completed order for the same customer and lines, once per Idempotency-Key', async () => {
    const old = await orderOf(t, shop, failed.orderId);
    const headers = { ...shop.operator, 'idempotency-key': 'retry-order-1' };
    const response = await retry(failed.transactionId, { payment: { token: 'tok_visa' } }, headers);
    expect(response.statusCode, response.body).toBe(201);
    const { attempt, exception } = response.json<{ attempt: Attempt; exception: ExceptionView }>();
    expect(attempt).toMatchObject({ action: 'checkout', status: 'succeeded' });
    expect(exception).toMatchObject({ status: 'RETRIED_SUCCESS', retryCount: 1 });
    const newId = /\(([0-9a-f-]{36})\)/.exec(attempt.outcome ?? '')?.[1];
    expect(newId, attempt.outcome ?? '').toBeDefined();
    expect(newId).not.toBe(old.id);
    expect(attempt.outcome).toMatch(/completed \(payment captured\)/);

    const order = await orderOf(t, shop, newId!);
    expect(order).toMatchObject({
      status: 'completed',
      paymentStatus: 'captured',
      customerId: old.customerId,
      email: old.email,
      currency: old.currency,
      totals: old.totals,
      shippingAddress: old.shippingAddress,
      shippingOption: old.shippingOption,
      cartId: null,
    });
    const lineOf = ({ id: _id, ...line }: Order['lines'][number]) => line;
    expect(order.lines.map(lineOf)).toEqual(old.lines.map(lineOf));
    expect(order.number).toBeGreaterThan(old.number);
    expect(order.history[0]!.actor).toContain(`retry of ${old.name}`);
    // The stock of the new order was reserved and committed; the failed one's was given back.
    expect(await stockOf(t, shop, failed.item)).toMatchObject({ onHand: 3, reserved: 0 });

    // A double click with the same key replays the answer: one order, one attempt.
    const again = await retry(failed.transactionId, { payment: { token: 'tok_visa' } }, headers);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().attempt.id).toBe(attempt.id);
    const orders = await send(t.app, 'GET', '/api/v1/orders', failed.customer);
    expect(
      orders
        .json<{ items: Order[] }>()
        .items.map((o) => o.id)
        .sort(),
    ).toEqual([old.id, newId].sort());
    // Without a key, a second retry of a successful one is refused by the lifecycle.
    const third = await retry(failed.transactionId, { payment: { token: 'tok_visa' } });
    expect(third.statusCode).toBe(409);
    expect(third.json().code).toBe('ILLEGAL_TRANSITION');

    const listed = await send(t.app, 'GET', `${path(failed.transactionId)}/retries`, shop.operator);
    expect(listed.json<{ items: Attempt[] }>().items.map((a) => a.status)).toEqual(['succeeded']);
    expect(await auditActions(t, shop.id, exception.id)).toEqual(
      expect.arrayContaining(['retry.requested', 'retry.succeeded']),
    );
    expect(await retryEvents(exception.id)).toEqual(['succeeded']);
    // The payment token is nowhere in what the collector keeps.
    expect(JSON.stringify(await exceptionRow(t, shop.id, failed.transactionId))).not.toContain('tok_visa');
  });
});

describe('a retry whose payment fails', () => {
  it('ends failed with RETRIED_FAILED and the stock given back; a later retry may succeed', async () => {
    const failed = await failedCheckout('tok_processing_error');
    const response = await retry(failed.transactionId, { payment: { token: 'tok_card_declined' } });
    expect(response.statusCode, response.body).toBe(201);
    const { attempt, exception } = response.json<{ attempt: Attempt; exception: ExceptionView }>();
    expect(attempt).toMatchObject({ action: 'checkout', status: 'failed' });
    expect(attempt.outcome).toMatch(/failed: payment_declined/);
    expect(exception).toMatchObject({ status: 'RETRIED_FAILED', retryCount: 1 });
    const newId = /\(([0-9a-f-]{36})\)/.exec(attempt.outcome ?? '')?.[1];
    expect(await orderOf(t, shop, newId!)).toMatchObject({
      status: 'failed',
      failure: { reason: 'payment_declined' },
    });
    expect(await stockOf(t, shop, failed.item)).toMatchObject({ onHand: 5, reserved: 0, available: 5 });
    expect(await auditActions(t, shop.id, exception.id)).toEqual(
      expect.arrayContaining(['retry.requested', 'retry.failed']),
    );
    expect(await retryEvents(exception.id)).toEqual(['failed']);

    const second = await retry(failed.transactionId, { payment: { token: 'tok_visa' } });
    expect(second.statusCode, second.body).toBe(201);
    expect(second.json()).toMatchObject({
      attempt: { status: 'succeeded' },
      exception: { status: 'RETRIED_SUCCESS', retryCount: 2 },
    });
    expect(await stockOf(t, shop, failed.item)).toMatchObject({ onHand: 3, reserved: 0 });
  });

  it('refuses a declined checkout (not retryable by default) even with a new token', async () => {
    const declined = await failedCheckout('tok_card_declined');
    expect(declined.exception).toMatchObject({ category: 'BUSINESS_RULE', retryable: false });
    const response = await retry(declined.transactionId, { payment: { token: 'tok_visa' } });
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('NOT_RETRYABLE');
    const orders = await send(t.app, 'GET', '/api/v1/orders', declined.customer);
    expect(orders.json<{ items: Order[] }>().items).toHaveLength(1);
  });
});

describe('a retry whose payment is still under way', () => {
  it('answers 202 with the attempt pending, refuses another meanwhile, and succeeds when the payment is confirmed', async () => {
    const failed = await failedCheckout('tok_processing_error');
    const response = await retry(failed.transactionId, { payment: { token: 'tok_pending' } });
    expect(response.statusCode, response.body).toBe(202);
    const { attempt, exception } = response.json<{ attempt: Attempt; exception: ExceptionView }>();
    expect(attempt).toMatchObject({ action: 'checkout', status: 'pending' });
    expect(attempt.outcome).toMatch(/^checkout of new order #\d+ \([0-9a-f-]{36}\) running$/);
    expect(exception.status).toBe('RETRY_IN_PROGRESS');
    const newId = /\(([0-9a-f-]{36})\)/.exec(attempt.outcome!)![1]!;
    const busy = await retry(failed.transactionId, { payment: { token: 'tok_visa' } });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().code).toBe('RETRY_IN_PROGRESS');

    // The provider confirms the payment with its signed webhook.
    await confirmPending(t, shop.id, newId!);
    await until(async () => {
      const listed = await send(t.app, 'GET', `${path(failed.transactionId)}/retries`, shop.operator);
      return listed.json<{ items: Attempt[] }>().items[0]?.status === 'succeeded';
    }, 'the pending checkout attempt settled');
    expect((await exceptionRow(t, shop.id, failed.transactionId)).status).toBe('RETRIED_SUCCESS');
    expect(await orderOf(t, shop, newId)).toMatchObject({ status: 'completed', paymentStatus: 'captured' });
    expect(await stockOf(t, shop, failed.item)).toMatchObject({ onHand: 3, reserved: 0 });
    expect(await retryEvents(exception.id)).toEqual(['succeeded']);
  });
});
