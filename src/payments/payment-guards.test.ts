import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Payment } from './index.ts';
import { providerKeys } from './payment-store.ts';
import {
  authorizeInput,
  createShop,
  noAbort,
  type PaymentsTestApp,
  paymentEvents,
  pspCharge,
  type Shop,
  send,
  startPaymentsApp,
  uuidv7,
} from './payments-test-fixtures.ts';

// The orders module stands in as a map the tests change (an order cancelled or failed meanwhile).
const orders = new Map<string, { total: number; currency: string; status: string }>();
let t: PaymentsTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startPaymentsApp({}, { findOrder: async (_tenantId, orderId) => orders.get(orderId) });
  shop = await createShop(t, 'guard-shop');
});
afterAll(() => t.close());

const post = (path: string, body: unknown = {}) => send(t.app, 'POST', `/api/v1${path}`, shop.staff, body);

function expectProblem(response: LightMyRequestResponse, status: number, code: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(response.json()).toMatchObject({ status, code });
}

/** A staff payment (POST /payments) of a new open order of 1500 EUR cents. */
async function staffPayment(token = 'tok_visa'): Promise<Payment> {
  const orderId = uuidv7();
  orders.set(orderId, { total: 1500, currency: 'EUR', status: 'completed' });
  const created = await post('/payments', { orderId, currency: 'EUR', token });
  expect(created.statusCode, created.body).toBe(201);
  return created.json<Payment>();
}

describe('a staff payment of an order closed after it was made', () => {
  it('is not authorized once its order is cancelled (422, nothing asked of the PSP) and can still be failed', async () => {
    const payment = await staffPayment();
    orders.set(payment.orderId, { ...orders.get(payment.orderId)!, status: 'cancelled' });
    const processed = await post(`/payments/${payment.id}/process`);
    expectProblem(processed, 422, 'CHECKOUT_INVALID');
    expect(processed.json()).toMatchObject({ paymentId: payment.id, orderStatus: 'cancelled' });
    expect((await pspCharge(t, shop.id, providerKeys.authorize(payment.key))).charge).toBeUndefined();
    const failed = await post(`/payments/${payment.id}/fail`, { reason: 'order cancelled' });
    expect(failed.json()).toMatchObject({ status: 'failed', failureCode: 'manual' });
  });

  it('is not captured once its order failed (422, the PSP charge stays authorized) and can be voided', async () => {
    const payment = await staffPayment();
    expect((await post(`/payments/${payment.id}/process`)).json()).toMatchObject({ status: 'authorized' });
    orders.set(payment.orderId, { ...orders.get(payment.orderId)!, status: 'failed' });
    expectProblem(await post(`/payments/${payment.id}/complete`), 422, 'CHECKOUT_INVALID');
    expect((await pspCharge(t, shop.id, providerKeys.authorize(payment.key))).charge).toMatchObject({
      status: 'authorized',
      capturedAmount: 0,
    });
    const voided = await post(`/payments/${payment.id}/fail`, { reason: 'order failed' });
    expect(voided.json()).toMatchObject({ status: 'voided' });
  });

  it('is still processed and captured while its order is open', async () => {
    const payment = await staffPayment();
    expect((await post(`/payments/${payment.id}/process`)).statusCode).toBe(200);
    expect((await post(`/payments/${payment.id}/complete`)).json()).toMatchObject({ status: 'completed' });
  });
});

describe('a refund the provider refuses', () => {
  it('publishes mercato.payment.refund-failed after refund-initiated, and gives its amount back', async () => {
    const input = authorizeInput('tok_visa', { amount: 1000 });
    const { payment } = await t.payments.authorize(shop.id, input, noAbort());
    await t.payments.capture(shop.id, payment.key, noAbort());
    const captured = await t.payments.byKey(shop.id, payment.key);
    // The PSP's books say the charge was refunded elsewhere (its dashboard): it refuses Mercato's.
    await sql`update test_psp.charges set refunded_amount = captured_amount
      where id = ${captured!.providerTransactionId}`.execute(t.ctx.db.kysely);
    const refund = t.payments.refund(shop.id, payment.key, { reason: 'x', refundKey: 'r1' }, noAbort());
    await expect(refund).rejects.toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR' });
    const types = (await paymentEvents(t, shop.id, payment.id)).map((e) => e.type);
    expect(types.filter((type) => type.startsWith('mercato.payment.refund'))).toEqual([
      'mercato.payment.refund-initiated',
      'mercato.payment.refund-failed',
    ]);
    const last = (await paymentEvents(t, shop.id, payment.id)).at(-1)!;
    expect(last.data).toMatchObject({ status: 'completed', refundedAmount: 0 });
    // Not held back: another refund of it all is asked of the PSP (which refuses it again).
    const again = t.payments.refund(shop.id, payment.key, { reason: 'x', refundKey: 'r2' }, noAbort());
    await expect(again).rejects.toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR' });
  });
});

describe('a refund whose provider call fails', () => {
  it('answers 502 naming its refundKey, which finishes the pending refund once the PSP is back', async () => {
    const input = authorizeInput('tok_visa', { amount: 700 });
    const { payment } = await t.payments.authorize(shop.id, input, noAbort());
    await t.payments.capture(shop.id, payment.key, noAbort());
    const db = t.ctx.db.kysely;
    // The PSP is unreachable for refunds: its call throws (not an answer).
    await sql`create function test_psp.unreachable() returns trigger language plpgsql as $$
      begin raise exception 'connection reset'; end $$`.execute(db);
    await sql`create trigger unreachable before insert on test_psp.operations for each row
      when (new.kind = 'refund') execute function test_psp.unreachable()`.execute(db);
    // No refundKey given: the route makes one up, which only the answer can tell.
    const failed = await post(`/payments/${payment.id}/refund`, { reason: 'broken' });
    await sql`drop trigger unreachable on test_psp.operations`.execute(db);
    expectProblem(failed, 502, 'PAYMENT_PROVIDER_ERROR');
    const { refundKey } = failed.json<{ refundKey: string }>();
    expect(typeof refundKey).toBe('string');
    // Its amount is held back: a refund under another key finds nothing left.
    expectProblem(
      await post(`/payments/${payment.id}/refund`, { reason: 'again' }),
      409,
      'REFUND_EXCEEDS_CAPTURED',
    );
    const finished = await post(`/payments/${payment.id}/refund`, { reason: 'broken', refundKey });
    expect(finished.json()).toMatchObject({ status: 'refunded', refundedAmount: 700 });
  });
});
