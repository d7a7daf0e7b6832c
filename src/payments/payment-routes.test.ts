import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, bearer } from '../identity/users/user-test-fixtures.ts';
import type { Payment } from './index.ts';
import {
  createShop,
  expectStatus,
  type PaymentsTestApp,
  paymentEvents,
  pspCharge,
  type Shop,
  send,
  startPaymentsApp,
  uuidv7,
} from './payments-test-fixtures.ts';

let t: PaymentsTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startPaymentsApp();
  shop = await createShop(t, 'till-shop');
  other = await createShop(t, 'till-other');
});
afterAll(() => t.close());

const post = (path: string, body: unknown = {}, headers = shop.staff) =>
  send(t.app, 'POST', `/api/v1${path}`, headers, body);
const get = (path: string, headers = shop.staff) => send(t.app, 'GET', `/api/v1${path}`, headers);

/** A new pending payment (POST /payments). */
async function initiate(token = 'tok_visa', fields: Record<string, unknown> = {}): Promise<Payment> {
  const response = await post('/payments', {
    orderId: uuidv7(),
    amount: 1000,
    currency: 'EUR',
    token,
    ...fields,
  });
  expectStatus(response, 201, 'initiate');
  return response.json<Payment>();
}

function expectProblem(response: LightMyRequestResponse, status: number, code: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.json()).toMatchObject({ status, code });
}

describe('the lifecycle through the routes', () => {
  it('initiates, processes, completes and refunds a payment, each answer the payment after it', async () => {
    const created = await post('/payments', {
      orderId: uuidv7(),
      amount: 2500,
      currency: 'EUR',
      token: 'tok_visa',
    });
    expect(created.statusCode).toBe(201);
    const payment = created.json<Payment>();
    expect(payment).toMatchObject({
      status: 'pending',
      amount: 2500,
      provider: 'test',
      providerTransactionId: null,
    });
    expect(created.headers.location).toBe(`/api/v1/payments/${payment.id}`);
    expect(payment).not.toHaveProperty('token');
    expect((await get(`/payments/${payment.id}`)).json()).toEqual(payment);
    expect((await get(`/payments/order/${payment.orderId}`)).json()).toEqual({ items: [payment] });

    const processed = await post(`/payments/${payment.id}/process`);
    expect(processed.statusCode).toBe(200);
    expect(processed.json()).toMatchObject({ status: 'authorized' });
    // Processing again answers the authorization, without another call.
    expect((await post(`/payments/${payment.id}/process`)).json()).toEqual(processed.json());

    const completed = await post(`/payments/${payment.id}/complete`);
    expect(completed.json()).toMatchObject({ status: 'completed' });
    expect((await post(`/payments/${payment.id}/complete`)).json()).toEqual(completed.json());

    const part = await post(`/payments/${payment.id}/refund`, { amount: 1000, reason: 'one item back' });
    expect(part.json()).toMatchObject({ status: 'partially_refunded', refundedAmount: 1000 });
    expectProblem(
      await post(`/payments/${payment.id}/refund`, { amount: 1501, reason: 'too much' }),
      409,
      'REFUND_EXCEEDS_CAPTURED',
    );
    const rest = await post(`/payments/${payment.id}/refund`, { reason: 'all back' });
    expect(rest.json()).toMatchObject({ status: 'refunded', refundedAmount: 2500 });

    const history = (await get(`/payments/${payment.id}/operations`)).json<{
      items: { kind: string; outcome: string }[];
    }>();
    expect(history.items.map((o) => `${o.kind}:${o.outcome}`)).toEqual([
      'authorize:authorized',
      'capture:captured',
      'refund:refunded',
      'refund:refunded',
    ]);
    const types = (await paymentEvents(t, shop.id, payment.id)).map((e) =>
      e.type.replace('mercato.payment.', ''),
    );
    expect(types).toEqual([
      'initiated',
      'authorized',
      'completed',
      'refund-initiated',
      'refund-completed',
      'refund-initiated',
      'refund-completed',
    ]);
  });

  it('makes a refund idempotent by refundKey or by the Idempotency-Key header', async () => {
    const payment = await initiate();
    await post(`/payments/${payment.id}/process`);
    await post(`/payments/${payment.id}/complete`);
    const byKey = { amount: 100, reason: 'x', refundKey: 'once' };
    await post(`/payments/${payment.id}/refund`, byKey);
    expect((await post(`/payments/${payment.id}/refund`, byKey)).json()).toMatchObject({
      refundedAmount: 100,
    });
    const headers = { ...shop.staff, 'idempotency-key': `refund-${uuidv7()}` };
    await post(`/payments/${payment.id}/refund`, { amount: 50, reason: 'y' }, headers);
    const again = await post(`/payments/${payment.id}/refund`, { amount: 50, reason: 'y' }, headers);
    expect(again.json()).toMatchObject({ refundedAmount: 150 });
  });

  it('makes each refund sent without refundKey or Idempotency-Key a new one, as Stripe does', async () => {
    const payment = await initiate();
    await post(`/payments/${payment.id}/process`);
    await post(`/payments/${payment.id}/complete`);
    // A client retrying without a key refunds again: it must send a key to retry safely.
    const body = { amount: 100, reason: 'damaged' };
    expect((await post(`/payments/${payment.id}/refund`, body)).json()).toMatchObject({
      refundedAmount: 100,
    });
    expect((await post(`/payments/${payment.id}/refund`, body)).json()).toMatchObject({
      refundedAmount: 200,
    });
  });

  it('refuses an Idempotency-Key used again for another refund with 409 IDEMPOTENCY_KEY_REUSED, refunding once', async () => {
    const payment = await initiate();
    await post(`/payments/${payment.id}/process`);
    await post(`/payments/${payment.id}/complete`);
    const headers = { ...shop.staff, 'idempotency-key': `refund-${uuidv7()}` };
    const first = await post(`/payments/${payment.id}/refund`, { amount: 100, reason: 'damaged' }, headers);
    expect(first.json()).toMatchObject({ refundedAmount: 100 });
    for (const body of [
      { reason: 'damaged' },
      { amount: 100, reason: 'late delivery' },
      { amount: 100, reason: 'damaged', refundKey: 'another' },
    ]) {
      expectProblem(
        await post(`/payments/${payment.id}/refund`, body, headers),
        409,
        'IDEMPOTENCY_KEY_REUSED',
      );
    }
    const other = await initiate();
    await post(`/payments/${other.id}/process`);
    await post(`/payments/${other.id}/complete`);
    expectProblem(
      await post(`/payments/${other.id}/refund`, { amount: 100, reason: 'damaged' }, headers),
      409,
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect((await get(`/payments/${payment.id}`)).json()).toMatchObject({ refundedAmount: 100 });
    expect((await get(`/payments/${other.id}`)).json()).toMatchObject({ refundedAmount: 0 });
  });

  it('answers 402 PAYMENT_DECLINED for a decline and 502 PAYMENT_PROVIDER_ERROR for a provider error, the payment failed', async () => {
    const declined = await initiate('tok_insufficient_funds');
    const answer = await post(`/payments/${declined.id}/process`);
    expectProblem(answer, 402, 'PAYMENT_DECLINED');
    expect(answer.json()).toMatchObject({ paymentId: declined.id, declineCode: 'insufficient_funds' });
    expect((await get(`/payments/${declined.id}`)).json()).toMatchObject({ status: 'failed' });
    const broken = await initiate('tok_processing_error');
    expectProblem(await post(`/payments/${broken.id}/process`), 502, 'PAYMENT_PROVIDER_ERROR');
    expect((await get(`/payments/${broken.id}`)).json()).toMatchObject({ failureCode: 'processing_error' });
  });

  it('answers 202 for a pending authorization', async () => {
    const payment = await initiate('tok_pending');
    const answer = await post(`/payments/${payment.id}/process`);
    expect(answer.statusCode).toBe(202);
    expect(answer.json()).toMatchObject({ status: 'processing' });
  });

  it('answers 202 again to a process of a payment whose authorization is still pending at the PSP', async () => {
    const payment = await initiate('tok_pending');
    const first = await post(`/payments/${payment.id}/process`);
    expect(first.statusCode).toBe(202);
    // Asked again (a poll, a retry after a lost answer): the same key, so no second authorization.
    const again = await post(`/payments/${payment.id}/process`);
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json()).toMatchObject({
      status: 'processing',
      providerTransactionId: first.json().providerTransactionId,
    });
    const { operations } = await pspCharge(t, shop.id, first.json<Payment>().providerTransactionId!);
    expect(operations.filter((o) => o.kind === 'authorize')).toHaveLength(1);
  });

  it('fails a pending payment as manual, and voids an authorized one at the PSP', async () => {
    const pending = await initiate();
    const failed = await post(`/payments/${pending.id}/fail`, { reason: 'customer gave up' });
    expect(failed.json()).toMatchObject({
      status: 'failed',
      failureCode: 'manual',
      failureMessage: 'customer gave up',
    });
    expect((await post(`/payments/${pending.id}/fail`, { reason: 'again' })).json()).toEqual(failed.json());
    const types = (await paymentEvents(t, shop.id, pending.id)).map((e) => e.type);
    expect(types).toEqual(['mercato.payment.initiated', 'mercato.payment.failed']);

    const held = await initiate();
    const authorized = (await post(`/payments/${held.id}/process`)).json<Payment>();
    const voided = await post(`/payments/${held.id}/fail`, { reason: 'fraud check' });
    expect(voided.json()).toMatchObject({ status: 'voided', failureCode: 'voided' });
    expect((await pspCharge(t, shop.id, authorized.providerTransactionId!)).charge?.status).toBe('voided');
  });
});

describe('a payment key used again', () => {
  it('answers the payment to the same body again, and 409 IDEMPOTENCY_KEY_REUSED to another token, amount, currency or order', async () => {
    const key = `staff-${uuidv7()}`;
    const body = { orderId: uuidv7(), amount: 1000, currency: 'EUR', token: 'tok_visa', key };
    const first = await post('/payments', body);
    expect(first.statusCode).toBe(201);
    const replay = await post('/payments', body);
    expect([replay.statusCode, replay.json().id]).toEqual([201, first.json().id]);
    for (const change of [
      { token: 'tok_card_declined' },
      { amount: 999 },
      { currency: 'USD' },
      { orderId: uuidv7() },
    ]) {
      const refused = await post('/payments', { ...body, ...change });
      expectProblem(refused, 409, 'IDEMPOTENCY_KEY_REUSED');
      expect(refused.json()).toMatchObject({ paymentId: first.json().id });
    }
    expect((await get(`/payments/${first.json().id}`)).json()).toEqual(first.json());
  });
});

describe('illegal transitions', () => {
  it('answers 409 ILLEGAL_TRANSITION naming both states', async () => {
    const pending = await initiate();
    const capture = await post(`/payments/${pending.id}/complete`);
    expectProblem(capture, 409, 'ILLEGAL_TRANSITION');
    expect(capture.json()).toMatchObject({ from: 'pending', to: 'completed', resource: 'payment' });
    expectProblem(await post(`/payments/${pending.id}/refund`, { reason: 'x' }), 409, 'ILLEGAL_TRANSITION');

    await post(`/payments/${pending.id}/fail`, { reason: 'x' });
    expectProblem(await post(`/payments/${pending.id}/process`), 409, 'ILLEGAL_TRANSITION');
    expectProblem(await post(`/payments/${pending.id}/complete`), 409, 'ILLEGAL_TRANSITION');

    const captured = await initiate();
    await post(`/payments/${captured.id}/process`);
    await post(`/payments/${captured.id}/complete`);
    expectProblem(await post(`/payments/${captured.id}/fail`, { reason: 'x' }), 409, 'ILLEGAL_TRANSITION');
  });
});

describe('bad input', () => {
  it.each([
    ['no token', { orderId: uuidv7(), amount: 1, currency: 'EUR' }],
    ['a lower-case currency', { orderId: uuidv7(), amount: 1, currency: 'eur', token: 'tok_visa' }],
    ['amount 0', { orderId: uuidv7(), amount: 0, currency: 'EUR', token: 'tok_visa' }],
    ['a fractional amount', { orderId: uuidv7(), amount: 1.5, currency: 'EUR', token: 'tok_visa' }],
    ['an order id that is no UUID', { orderId: '42', amount: 1, currency: 'EUR', token: 'tok_visa' }],
    [
      'another provider',
      { orderId: uuidv7(), amount: 1, currency: 'EUR', token: 'tok_visa', provider: 'stripe' },
    ],
    ['an unknown field', { orderId: uuidv7(), amount: 1, currency: 'EUR', token: 'tok_visa', card: '4242' }],
    ['no amount and no orders module', { orderId: uuidv7(), currency: 'EUR', token: 'tok_visa' }],
  ])('refuses %s with 400 VALIDATION_FAILED naming the field', async (_what, body) => {
    const response = await post('/payments', body);
    expectProblem(response, 400, 'VALIDATION_FAILED');
    expect(response.json().errors.length).toBeGreaterThan(0);
  });

  it('refuses ids that are no UUID, bodies that miss a reason and a bad Idempotency-Key', async () => {
    expectProblem(await get('/payments/nope'), 400, 'VALIDATION_FAILED');
    expectProblem(await post('/payments/nope/process'), 400, 'VALIDATION_FAILED');
    const payment = await initiate();
    expectProblem(await post(`/payments/${payment.id}/fail`, {}), 400, 'VALIDATION_FAILED');
    expectProblem(
      await post(`/payments/${payment.id}/refund`, { amount: -1, reason: 'x' }),
      400,
      'VALIDATION_FAILED',
    );
    const badKey = { ...shop.staff, 'idempotency-key': 'x'.repeat(201) };
    expectProblem(
      await post(`/payments/${payment.id}/refund`, { reason: 'x' }, badKey),
      400,
      'VALIDATION_FAILED',
    );
    expectProblem(await get(`/payments/${uuidv7()}`), 404, 'NOT_FOUND');
  });

  it('needs a credential (401) of staff (403)', async () => {
    expectProblem(await send(t.app, 'GET', `/api/v1/payments/${uuidv7()}`, {}), 401, 'UNAUTHENTICATED');
    await addUser(t, shop.id, 'buyer@till-shop.test', 'customer');
    const customer = await bearer(t, shop.slug, 'buyer@till-shop.test');
    expectProblem(await get(`/payments/${uuidv7()}`, customer), 403, 'FORBIDDEN');
    expectProblem(
      await post('/payments', { orderId: uuidv7(), amount: 1, currency: 'EUR', token: 'tok_visa' }, customer),
      403,
      'FORBIDDEN',
    );
  });
});

describe('tenant isolation', () => {
  it("answers 404 on every route with another tenant's payment id, and its order has no payments there", async () => {
    const payment = await initiate();
    const b = other.staff;
    expectProblem(await get(`/payments/${payment.id}`, b), 404, 'NOT_FOUND');
    expectProblem(await get(`/payments/${payment.id}/operations`, b), 404, 'NOT_FOUND');
    for (const [action, body] of [
      ['process', {}],
      ['complete', {}],
      ['fail', { reason: 'x' }],
      ['refund', { reason: 'x' }],
    ] as const) {
      expectProblem(await post(`/payments/${payment.id}/${action}`, body, b), 404, 'NOT_FOUND');
    }
    expect((await get(`/payments/order/${payment.orderId}`, b)).json()).toEqual({ items: [] });
    expect((await get(`/payments/${payment.id}`)).json()).toMatchObject({ status: 'pending' });
  });

  it('keeps payment keys per tenant: the same key in two tenants is two payments', async () => {
    const key = `same-${uuidv7()}`;
    const a = await initiate('tok_visa', { key });
    const response = await post(
      '/payments',
      { orderId: uuidv7(), amount: 5, currency: 'EUR', token: 'tok_visa', key },
      other.staff,
    );
    expect(response.statusCode).toBe(201);
    expect(response.json().id).not.toBe(a.id);
  });
});

describe('with the orders module and a short step timeout', () => {
  const orders = new Map<string, { total: number; currency: string; status: string }>();
  let o: PaymentsTestApp;
  let till: Shop;
  beforeAll(async () => {
    o = await startPaymentsApp(
      { MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '300' },
      { findOrder: async (_tenantId, orderId) => orders.get(orderId) },
    );
    till = await createShop(o, 'order-shop');
  });
  afterAll(() => o.close());
  const initiateFor = (body: Record<string, unknown>) =>
    send(o.app, 'POST', '/api/v1/payments', till.staff, body);

  it("takes the order's total by default; refuses an unknown order (404), another currency or more than the total (422)", async () => {
    const orderId = uuidv7();
    orders.set(orderId, { total: 4200, currency: 'EUR', status: 'completed' });
    const created = await initiateFor({ orderId, currency: 'EUR', token: 'tok_visa' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ amount: 4200 });
    expectProblem(
      await initiateFor({ orderId: uuidv7(), currency: 'EUR', token: 'tok_visa' }),
      404,
      'NOT_FOUND',
    );
    expectProblem(
      await initiateFor({ orderId, currency: 'USD', token: 'tok_visa' }),
      422,
      'CHECKOUT_INVALID',
    );
    expectProblem(
      await initiateFor({ orderId, amount: 4201, currency: 'EUR', token: 'tok_visa' }),
      422,
      'CHECKOUT_INVALID',
    );
    expectProblem(
      await send(o.app, 'GET', `/api/v1/payments/order/${uuidv7()}`, till.staff),
      404,
      'NOT_FOUND',
    );
  });

  it('refuses (409 CONFLICT) an order its checkout is taking the payment of: created, stock reserved or payment processing', async () => {
    for (const status of ['created', 'inventory_reserved', 'payment_processing']) {
      const orderId = uuidv7();
      orders.set(orderId, { total: 1000, currency: 'EUR', status });
      const refused = await initiateFor({ orderId, currency: 'EUR', token: 'tok_visa', amount: 100 });
      expectProblem(refused, 409, 'CONFLICT');
      expect(refused.json()).toMatchObject({ orderId, orderStatus: status });
    }
  });

  it("never lets payments under other keys hold more than the order's total, even sent at once; a failed one leaves room, a closed order takes none", async () => {
    const orderId = uuidv7();
    orders.set(orderId, { total: 1000, currency: 'EUR', status: 'completed' });
    const both = await Promise.all(
      ['a', 'b'].map((k) =>
        initiateFor({ orderId, currency: 'EUR', token: 'tok_visa', key: `${orderId}-${k}` }),
      ),
    );
    expect(both.map((r) => r.statusCode).sort()).toEqual([201, 422]);
    const first = both.find((r) => r.statusCode === 201)!.json<Payment>();
    const refused = both.find((r) => r.statusCode === 422)!;
    expect(refused.json()).toMatchObject({ code: 'CHECKOUT_INVALID', errors: [{ pointer: '/amount' }] });
    // Its replay is the same payment, not a second one refused.
    const replay = await initiateFor({ orderId, currency: 'EUR', token: 'tok_visa', key: first.key });
    expect([replay.statusCode, replay.json().id]).toEqual([201, first.id]);
    // A declined payment holds nothing: the rest of the total can be paid, not more.
    const declined = uuidv7();
    orders.set(declined, { total: 1000, currency: 'EUR', status: 'completed' });
    const failed = (
      await initiateFor({ orderId: declined, currency: 'EUR', token: 'tok_card_declined', amount: 600 })
    ).json<Payment>();
    expect((await send(o.app, 'POST', `/api/v1/payments/${failed.id}/process`, till.staff)).statusCode).toBe(
      402,
    );
    const again = await initiateFor({ orderId: declined, currency: 'EUR', token: 'tok_visa', amount: 600 });
    expect(again.statusCode).toBe(201);
    expectProblem(
      await initiateFor({ orderId: declined, currency: 'EUR', token: 'tok_visa', amount: 401 }),
      422,
      'CHECKOUT_INVALID',
    );
    expect(
      (await initiateFor({ orderId: declined, currency: 'EUR', token: 'tok_visa', amount: 400 })).statusCode,
    ).toBe(201);
    const cancelled = uuidv7();
    orders.set(cancelled, { total: 1000, currency: 'EUR', status: 'cancelled' });
    const closed = await initiateFor({ orderId: cancelled, currency: 'EUR', token: 'tok_visa' });
    expectProblem(closed, 422, 'CHECKOUT_INVALID');
    expect(closed.json().errors).toEqual([expect.objectContaining({ pointer: '/orderId' })]);
  });

  it("refuses a key used again with another token, amount or order (409 IDEMPOTENCY_KEY_REUSED), answering the same body's replay", async () => {
    const orderId = uuidv7();
    const otherOrder = uuidv7();
    orders.set(orderId, { total: 1000, currency: 'EUR', status: 'completed' });
    orders.set(otherOrder, { total: 1000, currency: 'EUR', status: 'completed' });
    const body = { orderId, currency: 'EUR', token: 'tok_visa', key: `staff-${orderId}` };
    const first = (await initiateFor(body)).json<Payment>();
    expect(first).toMatchObject({ amount: 1000 });
    const replay = await initiateFor(body);
    expect([replay.statusCode, replay.json().id]).toEqual([201, first.id]);
    for (const change of [{ token: 'tok_insufficient_funds' }, { amount: 500 }, { orderId: otherOrder }]) {
      expectProblem(await initiateFor({ ...body, ...change }), 409, 'IDEMPOTENCY_KEY_REUSED');
    }
    expect((await o.payments.byOrder(till.id, orderId)).map((p) => p.id)).toEqual([first.id]);
    expect(await o.payments.byOrder(till.id, otherOrder)).toEqual([]);
  });

  it('answers 504 CHECKOUT_TIMEOUT when the provider does not answer in time, and voids what it may have authorized', async () => {
    const orderId = uuidv7();
    orders.set(orderId, { total: 800, currency: 'EUR', status: 'completed' });
    const payment = (await initiateFor({ orderId, currency: 'EUR', token: 'tok_hang' })).json<Payment>();
    const answer = await send(o.app, 'POST', `/api/v1/payments/${payment.id}/process`, till.staff, {});
    expectProblem(answer, 504, 'CHECKOUT_TIMEOUT');
    const after = (await send(o.app, 'GET', `/api/v1/payments/${payment.id}`, till.staff)).json<Payment>();
    expect(after).toMatchObject({ status: 'failed', failureCode: 'timeout' });
    expect((await pspCharge(o, till.id, `authorize:${payment.key}`)).charge?.status).toBe('voided');
  });
});
