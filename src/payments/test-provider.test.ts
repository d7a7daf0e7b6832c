import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../platform/http/index.ts';
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
import { createTestPsp } from './providers/test-psp.ts';
import type { TestPspDb } from './providers/test-psp-tables.ts';

let t: PaymentsTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startPaymentsApp();
  shop = await createShop(t, 'psp-shop');
});
afterAll(() => t.close());

describe('the test provider, token by token', () => {
  it('authorizes tok_visa: the payment is authorized with the PSP charge id and publishes initiated then authorized', async () => {
    const input = authorizeInput('tok_visa');
    const result = await t.payments.authorize(shop.id, input, noAbort());
    expect(result.outcome).toBe('authorized');
    const { payment } = result;
    expect(payment).toMatchObject({
      key: input.key,
      orderId: input.orderId,
      amount: 1000,
      currency: 'EUR',
      status: 'authorized',
      provider: 'test',
      refundedAmount: 0,
      failureCode: null,
    });
    expect(payment.providerTransactionId).toMatch(/^ch_[0-9a-f]{32}$/);
    expect(payment.processedAt).not.toBeNull();
    const { charge, operations } = await pspCharge(t, shop.id, payment.providerTransactionId!);
    expect(charge).toMatchObject({ status: 'authorized', amount: 1000, currency: 'EUR', token: 'tok_visa' });
    expect(operations.map((o) => o.kind)).toEqual(['authorize']);
    const events = await paymentEvents(t, shop.id, payment.id);
    expect(events.map((e) => e.type)).toEqual(['mercato.payment.initiated', 'mercato.payment.authorized']);
    expect(events[0]!.data.status).toBe('pending');
    expect(events[1]!.data).toEqual(payment);
  });

  it.each([
    ['tok_insufficient_funds', 'insufficient_funds'],
    ['tok_card_declined', 'card_declined'],
    ['tok_no_such_token', 'card_declined'],
  ])('declines %s as %s: the payment fails with that code and publishes failed', async (token, code) => {
    const result = await t.payments.authorize(shop.id, authorizeInput(token), noAbort());
    expect(result).toMatchObject({
      outcome: 'declined',
      code,
      payment: { status: 'failed', failureCode: code },
    });
    expect(result.outcome === 'declined' && result.message.length > 0).toBe(true);
    const events = await paymentEvents(t, shop.id, result.payment.id);
    expect(events.map((e) => e.type)).toEqual(['mercato.payment.initiated', 'mercato.payment.failed']);
    const ledger = await t.payments.testProvider.ledger(shop.id);
    const charge = ledger.charges.find((c) => c.idempotencyKey === `authorize:${result.payment.key}`);
    expect(charge).toMatchObject({ status: 'declined', declineCode: code });
  });

  it('answers error for tok_processing_error: the payment fails as processing_error', async () => {
    const result = await t.payments.authorize(shop.id, authorizeInput('tok_processing_error'), noAbort());
    expect(result).toMatchObject({
      outcome: 'error',
      payment: { status: 'failed', failureCode: 'processing_error' },
    });
  });

  it('answers pending for tok_pending: the payment stays processing with the transaction id, no outcome event yet', async () => {
    const result = await t.payments.authorize(shop.id, authorizeInput('tok_pending'), noAbort());
    expect(result).toMatchObject({ outcome: 'pending', payment: { status: 'processing' } });
    expect(result.payment.providerTransactionId).toMatch(/^ch_/);
    const events = await paymentEvents(t, shop.id, result.payment.id);
    expect(events.map((e) => e.type)).toEqual(['mercato.payment.initiated']);
    const { charge } = await pspCharge(t, shop.id, result.payment.providerTransactionId!);
    expect(charge?.status).toBe('pending');
  });

  it('records tok_hang at the PSP but never answers; the abort rejects with its reason, and a void by key releases it', async () => {
    const input = authorizeInput('tok_hang');
    const controller = new AbortController();
    const reason = new Error('step timed out');
    setTimeout(() => controller.abort(reason), 150);
    await expect(t.payments.authorize(shop.id, input, controller.signal)).rejects.toBe(reason);
    const hung = await t.payments.byKey(shop.id, input.key);
    expect(hung).toMatchObject({ status: 'processing', providerTransactionId: null });
    const before = await pspCharge(t, shop.id, `authorize:${input.key}`);
    expect(before.charge?.status).toBe('authorized');

    const voided = await t.payments.void(shop.id, input.key, 'checkout timed out', noAbort());
    expect(voided).toMatchObject({
      status: 'failed',
      failureCode: 'voided',
      failureMessage: 'checkout timed out',
    });
    const after = await pspCharge(t, shop.id, `authorize:${input.key}`);
    expect(after.charge?.status).toBe('voided');
    expect(after.operations.map((o) => o.kind)).toEqual(['authorize', 'void']);
    // Voiding again changes nothing and asks nobody.
    expect(await t.payments.void(shop.id, input.key, 'again', noAbort())).toEqual(voided);
    expect((await pspCharge(t, shop.id, `authorize:${input.key}`)).operations).toHaveLength(2);
    const types = (await paymentEvents(t, shop.id, voided!.id)).map((e) => e.type);
    expect(types).toEqual(['mercato.payment.initiated', 'mercato.payment.voided']);
    const history = await send(t.app, 'GET', `/api/v1/payments/${voided!.id}/operations`, shop.staff);
    expect(
      history.json().items.map((o: { kind: string; outcome: string }) => `${o.kind}:${o.outcome}`),
    ).toEqual(['authorize:aborted', 'void:voided']);
  });

  it('rejects at once with the reason of a signal already aborted, calling nobody', async () => {
    const input = authorizeInput('tok_visa');
    const reason = new Error('gone');
    await expect(t.payments.authorize(shop.id, input, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect((await pspCharge(t, shop.id, `authorize:${input.key}`)).charge).toBeUndefined();
  });
});

describe('the PSP ledger', () => {
  const psp = () => createTestPsp(t.ctx.db.kysely as TestPspDb, 0);
  const call = { merchantId: '', idempotencyKey: '' };

  it('refuses an authorization that arrives after a void of its key (no hold can outlive the void)', async () => {
    const key = `authorize:late-${uuidv7()}`;
    const merchantId = shop.id;
    const voided = await psp().void(
      { ...call, merchantId, idempotencyKey: `void:${key}`, authorizationKey: key },
      noAbort(),
    );
    expect(voided).toEqual({ status: 'voided' });
    const late = await psp().authorize(
      { merchantId, idempotencyKey: key, amount: 500, currency: 'EUR', token: 'tok_visa' },
      noAbort(),
    );
    expect(late.status).toBe('error');
    const ledger = await t.payments.testProvider.ledger(merchantId);
    expect(ledger.charges.filter((c) => c.idempotencyKey === key).map((c) => c.status)).toEqual(['voided']);
  });

  it('answers the first result to the same key, and an error to the same key with another amount', async () => {
    const merchantId = shop.id;
    const input = {
      merchantId,
      idempotencyKey: `k-${uuidv7()}`,
      amount: 700,
      currency: 'EUR',
      token: 'tok_visa',
    };
    const first = await psp().authorize(input, noAbort());
    const again = await psp().authorize(input, noAbort());
    expect(again).toEqual(first);
    expect(await psp().authorize({ ...input, amount: 701 }, noAbort())).toMatchObject({ status: 'error' });
    const ledger = await t.payments.testProvider.ledger(merchantId);
    expect(ledger.operations.filter((o) => o.idempotencyKey === input.idempotencyKey)).toHaveLength(1);
  });

  it('keeps merchants apart: the same key of another merchant is another charge', async () => {
    const other = await createShop(t, 'psp-other');
    const idempotencyKey = `shared-${uuidv7()}`;
    const input = { idempotencyKey, amount: 100, currency: 'EUR', token: 'tok_visa' };
    const a = await psp().authorize({ ...input, merchantId: shop.id }, noAbort());
    const b = await psp().authorize({ ...input, merchantId: other.id }, noAbort());
    expect(a.status === 'authorized' && b.status === 'authorized').toBe(true);
    expect(a).not.toEqual(b);
    expect((await t.payments.testProvider.ledger(other.id)).charges).toHaveLength(1);
  });

  it('captures only the authorized amount in full, once, and refunds no more than was captured', async () => {
    const merchantId = shop.id;
    const key = `k-${uuidv7()}`;
    const auth = await psp().authorize(
      { merchantId, idempotencyKey: key, amount: 900, currency: 'EUR', token: 'tok_visa' },
      noAbort(),
    );
    if (auth.status !== 'authorized') throw new Error('not authorized');
    const transactionId = auth.transactionId;
    const capture = (idempotencyKey: string, amount = 900) =>
      psp().capture({ merchantId, idempotencyKey, transactionId, amount }, noAbort());
    expect(await capture('c1', 800)).toMatchObject({ status: 'error' });
    expect(await capture(`c2-${key}`)).toEqual({ status: 'captured' });
    expect(await capture(`c3-${key}`)).toMatchObject({ status: 'error' });
    const refund = (idempotencyKey: string, amount: number) =>
      psp().refund({ merchantId, idempotencyKey, transactionId, amount }, noAbort());
    expect(await refund(`r1-${key}`, 600)).toMatchObject({ status: 'refunded' });
    expect(await refund(`r2-${key}`, 301)).toMatchObject({ status: 'error' });
    expect(await refund(`r3-${key}`, 300)).toMatchObject({ status: 'refunded' });
    const { charge } = await pspCharge(t, merchantId, transactionId);
    expect(charge).toMatchObject({ status: 'captured', capturedAmount: 900, refundedAmount: 900 });
  });
});

describe('configuration', () => {
  it('adds MERCATO_TEST_PSP_LATENCY_MS to each call; an abort during it reaches the PSP not at all', async () => {
    const slow = await startPaymentsApp({ MERCATO_TEST_PSP_LATENCY_MS: '400' });
    try {
      const tenant = await createShop(slow, 'slow-psp');
      const started = Date.now();
      const result = await slow.payments.authorize(tenant.id, authorizeInput('tok_visa'), noAbort());
      expect(result.outcome).toBe('authorized');
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
      const input = authorizeInput('tok_visa');
      await expect(slow.payments.authorize(tenant.id, input, AbortSignal.timeout(100))).rejects.toMatchObject(
        {
          name: 'TimeoutError',
        },
      );
      expect((await pspCharge(slow, tenant.id, `authorize:${input.key}`)).charge).toBeUndefined();
    } finally {
      await slow.close();
    }
  });

  it('refuses the test provider with 422 CHECKOUT_INVALID when MERCATO_TEST_PAYMENTS is false', async () => {
    const off = await startPaymentsApp({ MERCATO_TEST_PAYMENTS: 'false' });
    try {
      const tenant = await createShop(off, 'no-test-psp');
      const refused = await off.payments
        .authorize(tenant.id, authorizeInput('tok_visa'), noAbort())
        .catch((e) => e);
      expect(refused).toBeInstanceOf(AppError);
      expect(refused).toMatchObject({ code: 'CHECKOUT_INVALID', status: 422 });
      const route = await send(off.app, 'POST', '/api/v1/payments', tenant.staff, {
        orderId: uuidv7(),
        amount: 100,
        currency: 'EUR',
        token: 'tok_visa',
      });
      expect(route.statusCode).toBe(422);
      expect(route.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(route.json().code).toBe('CHECKOUT_INVALID');
      expect(await off.payments.byOrder(tenant.id, uuidv7())).toEqual([]);
    } finally {
      await off.close();
    }
  });
});
