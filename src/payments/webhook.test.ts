import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '../platform/webhook-signature.ts';
import {
  authorizeInput,
  createShop,
  deliver,
  noAbort,
  type PaymentsTestApp,
  paymentEvents,
  type Shop,
  send,
  startPaymentsApp,
  uuidv7,
} from './payments-test-fixtures.ts';
import type { TestPspDb } from './providers/test-psp-tables.ts';
import { webhookSecret } from './providers/test-psp-webhooks.ts';

let t: PaymentsTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startPaymentsApp();
  shop = await createShop(t, 'hook-shop');
  other = await createShop(t, 'hook-other');
});
afterAll(() => t.close());

/** A payment whose authorization is pending at the PSP (tok_pending). */
async function pendingPayment() {
  const result = await t.payments.authorize(shop.id, authorizeInput('tok_pending'), noAbort());
  if (result.outcome !== 'pending') throw new Error(`expected pending, got ${result.outcome}`);
  return result.payment;
}

/** body signed as the PSP signs, at the given time (seconds), under the given webhook id. */
async function signed(body: string, id: string, at = Math.floor(Date.now() / 1000)) {
  const secret = await webhookSecret(t.ctx.db.kysely as TestPspDb);
  return {
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(at),
      'webhook-signature': signWebhook(secret, id, at, body),
    },
    body,
  };
}

const typesOf = async (paymentId: string) => (await paymentEvents(t, shop.id, paymentId)).map((e) => e.type);

describe('the test PSP webhook', () => {
  it('settles a pending payment once with a valid signature and publishes authorized; a replay has no second effect', async () => {
    const payment = await pendingPayment();
    const delivery = await t.payments.testProvider.settlePending(
      payment.providerTransactionId!,
      'authorized',
    );
    expect(delivery.headers['webhook-signature']).toMatch(/^v1,/);
    const first = await deliver(t, delivery);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({ received: true, effect: 'applied', paymentId: payment.id });
    const after = await t.payments.byKey(shop.id, payment.key);
    expect(after).toMatchObject({
      status: 'authorized',
      providerTransactionId: payment.providerTransactionId,
    });
    expect(await typesOf(payment.id)).toEqual(['mercato.payment.initiated', 'mercato.payment.authorized']);

    const replay = await deliver(t, delivery);
    expect(replay.json()).toMatchObject({ effect: 'duplicate' });
    // The PSP delivering the same event again (same webhook-id, new timestamp) is a duplicate too.
    const redelivered = await deliver(
      t,
      await t.payments.testProvider.settlePending(payment.providerTransactionId!, 'authorized'),
    );
    expect(redelivered.json()).toMatchObject({ effect: 'duplicate' });
    expect(await typesOf(payment.id)).toEqual(['mercato.payment.initiated', 'mercato.payment.authorized']);
    expect(await t.payments.byKey(shop.id, payment.key)).toEqual(after);

    // The saga continues: the payment captures as any authorized one.
    expect(await t.payments.capture(shop.id, payment.key, noAbort())).toMatchObject({ status: 'completed' });
  });

  it('fails a pending payment settled as failed and publishes failed; authorize then answers declined', async () => {
    const payment = await pendingPayment();
    const response = await deliver(
      t,
      await t.payments.testProvider.settlePending(payment.providerTransactionId!, 'failed'),
    );
    expect(response.json()).toMatchObject({ effect: 'applied' });
    expect(await typesOf(payment.id)).toEqual(['mercato.payment.initiated', 'mercato.payment.failed']);
    const input = { ...authorizeInput('tok_pending', { key: payment.key, orderId: payment.orderId }) };
    expect(await t.payments.authorize(shop.id, input, noAbort())).toMatchObject({
      outcome: 'declined',
      code: 'card_declined',
      payment: { status: 'failed', failureCode: 'card_declined' },
    });
  });

  it('records the webhook in the payment history', async () => {
    const payment = await pendingPayment();
    await deliver(
      t,
      await t.payments.testProvider.settlePending(payment.providerTransactionId!, 'authorized'),
    );
    const history = await send(t.app, 'GET', `/api/v1/payments/${payment.id}/operations`, shop.staff);
    expect(
      history.json().items.map((o: { source: string; outcome: string }) => `${o.source}:${o.outcome}`),
    ).toEqual(['call:pending', 'webhook:authorized']);
  });

  it('ignores a settlement of a payment that moved on (voided), with another webhook id too', async () => {
    const payment = await pendingPayment();
    const delivery = await t.payments.testProvider.settlePending(
      payment.providerTransactionId!,
      'authorized',
    );
    await t.payments.void(shop.id, payment.key, 'gave up', noAbort());
    expect((await deliver(t, delivery)).json()).toMatchObject({ effect: 'ignored' });
    const again = await signed(delivery.body, `${delivery.headers['webhook-id']}-retry`);
    expect((await deliver(t, again)).json()).toMatchObject({ effect: 'ignored' });
    expect(await t.payments.byKey(shop.id, payment.key)).toMatchObject({
      status: 'failed',
      failureCode: 'voided',
    });
    expect(await typesOf(payment.id)).toEqual(['mercato.payment.initiated', 'mercato.payment.voided']);
  });

  it('answers 401 INVALID_WEBHOOK_SIGNATURE to a wrong, missing or old signature and changes nothing', async () => {
    const payment = await pendingPayment();
    const delivery = await t.payments.testProvider.settlePending(
      payment.providerTransactionId!,
      'authorized',
    );
    const tampered = { ...delivery, body: delivery.body.replace('"charge.authorized"', '"charge.failed"') };
    const { 'webhook-signature': _dropped, ...unsigned } = delivery.headers;
    const otherSecret = {
      ...delivery.headers,
      'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}`,
    };
    const stale = await signed(delivery.body, 'evt_stale', Math.floor(Date.now() / 1000) - 6 * 60);
    for (const attempt of [
      tampered,
      { ...delivery, headers: unsigned },
      { ...delivery, headers: otherSecret },
      stale,
    ]) {
      const response = await deliver(t, attempt);
      expect(response.statusCode, response.body).toBe(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json().code).toBe('INVALID_WEBHOOK_SIGNATURE');
    }
    expect(await t.payments.byKey(shop.id, payment.key)).toMatchObject({ status: 'processing' });
    expect(await typesOf(payment.id)).toEqual(['mercato.payment.initiated']);
  });

  it("finds the payment only within the merchant the body names: another tenant's id is 404", async () => {
    const payment = await pendingPayment();
    const delivery = await t.payments.testProvider.settlePending(
      payment.providerTransactionId!,
      'authorized',
    );
    const elsewhere = JSON.parse(delivery.body);
    elsewhere.data.merchantId = other.id;
    const response = await deliver(t, await signed(JSON.stringify(elsewhere), 'evt_elsewhere'));
    expect(response.statusCode).toBe(404);
    expect(response.json().code).toBe('NOT_FOUND');
    expect(await t.payments.byKey(shop.id, payment.key)).toMatchObject({ status: 'processing' });
  });

  it('refuses with a 400 problem, changing nothing, a signed body whose text the payment could not store', async () => {
    const payment = await pendingPayment();
    const delivery = await t.payments.testProvider.settlePending(payment.providerTransactionId!, 'failed');
    const event = JSON.parse(delivery.body);
    const variants: Array<[string, string, string]> = [
      // U+0000: PostgreSQL text cannot hold it.
      [
        '/data/failureMessage',
        'VALIDATION_FAILED',
        JSON.stringify({ ...event, data: { ...event.data, failureMessage: 'no\u0000' } }),
      ],
      [
        '/data/transactionId',
        'VALIDATION_FAILED',
        JSON.stringify({ ...event, data: { ...event.data, transactionId: 'ch_\u0000' } }),
      ],
      // Found by its authorization key, the payment would store this id: its column holds 200 characters.
      [
        '/data/transactionId',
        'VALIDATION_FAILED',
        JSON.stringify({ ...event, data: { ...event.data, transactionId: 'x'.repeat(250) } }),
      ],
      // A lone surrogate is no text: it would be stored as U+FFFD.
      [
        '/data/failureMessage',
        'INVALID_UNICODE',
        delivery.body.replace('"the card was declined"', '"declined \\ud800"'),
      ],
    ];
    for (const [pointer, code, body] of variants) {
      const response = await deliver(t, await signed(body, `evt_bad_${uuidv7()}`));
      expect(response.statusCode, response.body).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code, errors: [{ in: 'body', pointer }] });
    }
    expect(await t.payments.byKey(shop.id, payment.key)).toMatchObject({ status: 'processing' });
    expect(await typesOf(payment.id)).toEqual(['mercato.payment.initiated']);
    // The PSP's own delivery still settles it.
    expect((await deliver(t, delivery)).json()).toMatchObject({ effect: 'applied' });
  });

  it('refuses a signed webhook-id over 200 characters with 400 VALIDATION_FAILED naming the header', async () => {
    const payment = await pendingPayment();
    const delivery = await t.payments.testProvider.settlePending(
      payment.providerTransactionId!,
      'authorized',
    );
    const answer = await deliver(t, await signed(delivery.body, `evt_${'x'.repeat(200)}`));
    expect(answer.statusCode, answer.body).toBe(400);
    expect(answer.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ in: 'headers', pointer: '/webhook-id' }],
    });
    expect(await t.payments.byKey(shop.id, payment.key)).toMatchObject({ status: 'processing' });
  });

  it('refuses a signed body that is not a settlement (400) and a body that is not JSON (415 or 400)', async () => {
    const notJson = await signed('{"type": ', 'evt_broken');
    expect((await deliver(t, notJson)).json().code).toBe('MALFORMED_BODY');
    const wrong = await signed(JSON.stringify({ type: 'charge.refunded', data: {} }), 'evt_wrong');
    const answer = await deliver(t, wrong);
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ pointer: '/type' }] });
    const text = await t.app.inject({
      method: 'POST',
      url: '/api/v1/payments/webhooks/test',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.statusCode).toBe(415);
  });
});
