import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { providerKeys } from './payment-store.ts';
import {
  authorizeInput,
  createShop,
  noAbort,
  type PaymentsTestApp,
  paymentEvents,
  pspCharge,
  type Shop,
  startPaymentsApp,
  uuidv7,
} from './payments-test-fixtures.ts';
import { createTestPsp } from './providers/test-psp.ts';
import type { TestPspDb } from './providers/test-psp-tables.ts';

let t: PaymentsTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startPaymentsApp();
  shop = await createShop(t, 'api-shop');
});
afterAll(() => t.close());

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: { code?: string }) => error.code ?? String(error),
  );

/** An authorized payment of amount (tok_visa). */
async function authorized(amount = 1000) {
  const result = await t.payments.authorize(shop.id, authorizeInput('tok_visa', { amount }), noAbort());
  if (result.outcome !== 'authorized') throw new Error(`not authorized: ${result.outcome}`);
  return result.payment;
}

describe('authorize is idempotent by key', () => {
  it('answers the same payment to the same key twice, with one PSP charge and one PSP authorization', async () => {
    const input = authorizeInput('tok_visa');
    const first = await t.payments.authorize(shop.id, input, noAbort());
    const again = await t.payments.authorize(shop.id, input, noAbort());
    expect(again).toEqual(first);
    const { charge, operations } = await pspCharge(t, shop.id, providerKeys.authorize(input.key));
    expect(charge?.status).toBe('authorized');
    expect(operations).toHaveLength(1);
    expect((await t.payments.byOrder(shop.id, input.orderId)).map((p) => p.id)).toEqual([first.payment.id]);
  });

  it('authorizes once when 20 calls with one key arrive together', async () => {
    const input = authorizeInput('tok_visa');
    const results = await Promise.all(
      Array.from({ length: 20 }, () => t.payments.authorize(shop.id, input, noAbort())),
    );
    expect(new Set(results.map((r) => r.outcome))).toEqual(new Set(['authorized']));
    expect(new Set(results.map((r) => r.payment.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.payment.providerTransactionId)).size).toBe(1);
    const ledger = await t.payments.testProvider.ledger(shop.id);
    expect(ledger.charges.filter((c) => c.idempotencyKey === providerKeys.authorize(input.key))).toHaveLength(
      1,
    );
    expect(
      ledger.operations.filter((o) => o.idempotencyKey === providerKeys.authorize(input.key)),
    ).toHaveLength(1);
    const events = await paymentEvents(t, shop.id, results[0]!.payment.id);
    expect(events.map((e) => e.type)).toEqual(['mercato.payment.initiated', 'mercato.payment.authorized']);
  });

  it('finishes after a crash between the PSP call and its answer without authorizing twice', async () => {
    const input = authorizeInput('tok_visa');
    // What a process that died mid-call leaves: the payment processing, the PSP's authorization made.
    await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      sql`insert into payments.payments (id, tenant_id, order_id, key, amount, currency, status, provider, token)
          values (${uuidv7()}, ${shop.id}, ${input.orderId}, ${input.key}, 1000, 'EUR', 'processing', 'test', 'tok_visa')`.execute(
        trx,
      ),
    );
    const psp = createTestPsp(t.ctx.db.kysely as TestPspDb, 0);
    const made = await psp.authorize(
      {
        merchantId: shop.id,
        idempotencyKey: providerKeys.authorize(input.key),
        amount: 1000,
        currency: 'EUR',
        token: 'tok_visa',
      },
      noAbort(),
    );
    const resumed = await t.payments.authorize(shop.id, input, noAbort());
    expect(resumed).toMatchObject({ outcome: 'authorized', payment: { status: 'authorized' } });
    expect(made.status === 'authorized' && made.transactionId).toBe(resumed.payment.providerTransactionId);
    expect((await pspCharge(t, shop.id, providerKeys.authorize(input.key))).operations).toHaveLength(1);
  });

  it('answers a settled payment without calling the provider again', async () => {
    const input = authorizeInput('tok_card_declined');
    const first = await t.payments.authorize(shop.id, input, noAbort());
    const again = await t.payments.authorize(shop.id, input, noAbort());
    expect(again).toEqual(first);
    expect((await pspCharge(t, shop.id, providerKeys.authorize(input.key))).operations).toHaveLength(1);
  });

  it('refuses the key of another order, amount, currency or token with 409 IDEMPOTENCY_KEY_REUSED', async () => {
    const input = authorizeInput('tok_visa');
    await t.payments.authorize(shop.id, input, noAbort());
    for (const change of [
      { amount: 999 },
      { orderId: uuidv7() },
      { currency: 'USD' },
      { token: 'tok_pending' },
    ]) {
      expect(await codeOf(t.payments.authorize(shop.id, { ...input, ...change }, noAbort()))).toBe(
        'IDEMPOTENCY_KEY_REUSED',
      );
    }
  });

  it('refuses bad input with 400 VALIDATION_FAILED and an unknown provider likewise', async () => {
    for (const change of [
      { amount: 0 },
      { amount: 1.5 },
      { currency: 'eur' },
      { orderId: 'x' },
      { key: '' },
      { token: '' },
    ]) {
      expect(
        await codeOf(t.payments.authorize(shop.id, { ...authorizeInput('tok_visa'), ...change }, noAbort())),
      ).toBe('VALIDATION_FAILED');
    }
    const stripe = { ...authorizeInput('tok_visa'), provider: 'stripe' };
    expect(await codeOf(t.payments.authorize(shop.id, stripe, noAbort()))).toBe('VALIDATION_FAILED');
  });
});

describe('an answer that arrives after the payment was settled meanwhile', () => {
  const operationOf = (id: string) =>
    withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const { rows } = await sql<{ outcome: string; finished_at: Date | null }>`
        select outcome, finished_at from payments.operations where id = ${id}`.execute(trx);
      return rows[0];
    });

  it('keeps a settlement made while the authorization was out: the answer only finishes its operation', async () => {
    const input = authorizeInput('tok_visa');
    const db = t.ctx.db.kysely;
    const call = await withTenant(db, shop.id, (trx) => t.payments.startAuthorization(trx, shop.id, input));
    if (call.done) throw new Error('a new payment needs its call');
    expect(call.row.status).toBe('processing');
    // A webhook (or a void) settles it while the call is out.
    await withTenant(db, shop.id, (trx) =>
      sql`update payments.payments set status = 'failed', failure_code = 'card_declined',
          failure_message = 'declined by webhook' where key = ${input.key}`.execute(trx),
    );
    const result = await t.payments.callAuthorization(shop.id, call, noAbort());
    expect(result.status).toBe('authorized');
    const outcome = await withTenant(db, shop.id, (trx) =>
      t.payments.finishAuthorization(trx, shop.id, call, result),
    );
    expect(outcome).toMatchObject({ outcome: 'declined', payment: { status: 'failed' } });
    expect(await operationOf(call.operationId)).toMatchObject({ outcome: 'authorized' });
    expect((await operationOf(call.operationId))?.finished_at).not.toBeNull();
    const types = (await paymentEvents(t, shop.id, call.row.id)).map((e) => e.type);
    expect(types).toEqual(['mercato.payment.initiated']);
  });

  it('keeps a capture made meanwhile: the late answer completes nothing twice', async () => {
    const payment = await authorized();
    const db = t.ctx.db.kysely;
    const call = await withTenant(db, shop.id, (trx) => t.payments.startCapture(trx, shop.id, payment.key));
    if (call.done) throw new Error('an authorized payment needs its capture call');
    const other = await t.payments.capture(shop.id, payment.key, noAbort());
    expect(other.status).toBe('completed');
    const result = await t.payments.callCapture(shop.id, call, noAbort());
    const { payment: after, refused } = await withTenant(db, shop.id, (trx) =>
      t.payments.finishCapture(trx, shop.id, call, result),
    );
    expect(refused).toBeUndefined();
    expect(after).toEqual(other);
    expect(await operationOf(call.operationId)).toMatchObject({ outcome: 'captured' });
    const types = (await paymentEvents(t, shop.id, payment.id)).map((e) => e.type);
    expect(types.filter((type) => type === 'mercato.payment.completed')).toHaveLength(1);
  });
});

describe('capture', () => {
  it('captures an authorized payment once, however often and concurrently it is asked', async () => {
    const payment = await authorized();
    const captures = await Promise.all(
      Array.from({ length: 5 }, () => t.payments.capture(shop.id, payment.key, noAbort())),
    );
    expect(new Set(captures.map((p) => p.status))).toEqual(new Set(['completed']));
    expect(await t.payments.capture(shop.id, payment.key, noAbort())).toEqual(captures[0]);
    const { charge, operations } = await pspCharge(t, shop.id, payment.providerTransactionId!);
    expect(charge).toMatchObject({ status: 'captured', capturedAmount: 1000 });
    expect(operations.filter((o) => o.kind === 'capture')).toHaveLength(1);
    const types = (await paymentEvents(t, shop.id, payment.id)).map((e) => e.type);
    expect(types.filter((type) => type === 'mercato.payment.completed')).toHaveLength(1);
  });

  it('refuses to capture a failed payment (409 ILLEGAL_TRANSITION) and never asks the PSP', async () => {
    const failed = await t.payments.authorize(shop.id, authorizeInput('tok_insufficient_funds'), noAbort());
    expect(await codeOf(t.payments.capture(shop.id, failed.payment.key, noAbort()))).toBe(
      'ILLEGAL_TRANSITION',
    );
    const ledger = await t.payments.testProvider.ledger(shop.id);
    expect(ledger.operations.some((o) => o.idempotencyKey === providerKeys.capture(failed.payment.key))).toBe(
      false,
    );
  });

  it('answers 404 for a key no payment has', async () => {
    expect(await codeOf(t.payments.capture(shop.id, 'no-such-key', noAbort()))).toBe('NOT_FOUND');
  });
});

describe('void', () => {
  it('voids an authorization at the PSP; again is the same; capture afterwards is illegal', async () => {
    const payment = await authorized();
    const voided = await t.payments.void(shop.id, payment.key, 'order cancelled', noAbort());
    expect(voided).toMatchObject({
      status: 'voided',
      failureCode: 'voided',
      failureMessage: 'order cancelled',
    });
    expect(await t.payments.void(shop.id, payment.key, 'again', noAbort())).toEqual(voided);
    expect((await pspCharge(t, shop.id, payment.providerTransactionId!)).charge?.status).toBe('voided');
    expect(await codeOf(t.payments.capture(shop.id, payment.key, noAbort()))).toBe('ILLEGAL_TRANSITION');
  });

  it('voids a pending authorization, which can then no longer be settled', async () => {
    const pending = await t.payments.authorize(shop.id, authorizeInput('tok_pending'), noAbort());
    const voided = await t.payments.void(shop.id, pending.payment.key, 'timeout', noAbort());
    expect(voided).toMatchObject({ status: 'failed', failureCode: 'voided' });
    await expect(
      t.payments.testProvider.settlePending(pending.payment.providerTransactionId!, 'authorized'),
    ).rejects.toThrow(/voided/);
  });

  it('refuses to void a captured payment, and answers undefined for an unknown key', async () => {
    const payment = await authorized();
    await t.payments.capture(shop.id, payment.key, noAbort());
    expect(await codeOf(t.payments.void(shop.id, payment.key, 'late', noAbort()))).toBe('ILLEGAL_TRANSITION');
    expect(await t.payments.void(shop.id, `nothing-${uuidv7()}`, 'x', noAbort())).toBeUndefined();
  });
});

describe('refund', () => {
  it('refunds part then the rest of a captured payment, each refund key once, with the amounts at the PSP', async () => {
    const payment = await authorized(1000);
    await t.payments.capture(shop.id, payment.key, noAbort());
    const part = await t.payments.refund(
      shop.id,
      payment.key,
      { amount: 300, reason: 'damaged', refundKey: 'r1' },
      noAbort(),
    );
    expect(part).toMatchObject({ status: 'partially_refunded', refundedAmount: 300 });
    const replay = await t.payments.refund(
      shop.id,
      payment.key,
      { amount: 300, reason: 'damaged', refundKey: 'r1' },
      noAbort(),
    );
    expect(replay).toEqual(part);
    const more = await t.payments.refund(
      shop.id,
      payment.key,
      { amount: 200, reason: 'late', refundKey: 'r2' },
      noAbort(),
    );
    expect(more).toMatchObject({ status: 'partially_refunded', refundedAmount: 500 });
    expect(
      await codeOf(
        t.payments.refund(shop.id, payment.key, { amount: 501, reason: 'x', refundKey: 'r3' }, noAbort()),
      ),
    ).toBe('REFUND_EXCEEDS_CAPTURED');
    const rest = await t.payments.refund(
      shop.id,
      payment.key,
      { reason: 'cancelled', refundKey: 'r4' },
      noAbort(),
    );
    expect(rest).toMatchObject({ status: 'refunded', refundedAmount: 1000 });
    expect(
      await codeOf(
        t.payments.refund(shop.id, payment.key, { amount: 1, reason: 'x', refundKey: 'r5' }, noAbort()),
      ),
    ).toBe('ILLEGAL_TRANSITION');
    const { charge, operations } = await pspCharge(t, shop.id, payment.providerTransactionId!);
    expect(charge).toMatchObject({ capturedAmount: 1000, refundedAmount: 1000 });
    expect(operations.filter((o) => o.kind === 'refund').map((o) => o.amount)).toEqual([300, 200, 500]);
    const types = (await paymentEvents(t, shop.id, payment.id)).map((e) => e.type);
    expect(types.filter((type) => type.startsWith('mercato.payment.refund'))).toEqual([
      'mercato.payment.refund-initiated',
      'mercato.payment.refund-completed',
      'mercato.payment.refund-initiated',
      'mercato.payment.refund-completed',
      'mercato.payment.refund-initiated',
      'mercato.payment.refund-completed',
    ]);
  });

  it('never refunds past the capture when refunds arrive together', async () => {
    const payment = await authorized(1000);
    await t.payments.capture(shop.id, payment.key, noAbort());
    const answers = await Promise.all(
      ['a', 'b', 'c', 'd'].map((refundKey) =>
        codeOf(t.payments.refund(shop.id, payment.key, { amount: 400, reason: 'x', refundKey }, noAbort())),
      ),
    );
    expect(answers.filter((a) => a === 'resolved')).toHaveLength(2);
    expect(answers.filter((a) => a === 'REFUND_EXCEEDS_CAPTURED')).toHaveLength(2);
    expect(await t.payments.byKey(shop.id, payment.key)).toMatchObject({ refundedAmount: 800 });
  });

  it('refuses to refund a payment not captured (409 ILLEGAL_TRANSITION) or the same key for another amount', async () => {
    const payment = await authorized();
    const refund = (amount: number, refundKey: string) =>
      codeOf(t.payments.refund(shop.id, payment.key, { amount, reason: 'x', refundKey }, noAbort()));
    expect(await refund(100, 'k')).toBe('ILLEGAL_TRANSITION');
    await t.payments.capture(shop.id, payment.key, noAbort());
    expect(await refund(100, 'k')).toBe('resolved');
    expect(await refund(200, 'k')).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('reads', () => {
  it('finds payments by key and by order, only within the tenant', async () => {
    const other = await createShop(t, 'api-other');
    const orderId = uuidv7();
    const a = await t.payments.authorize(
      shop.id,
      authorizeInput('tok_card_declined', { orderId }),
      noAbort(),
    );
    const b = await t.payments.authorize(shop.id, authorizeInput('tok_visa', { orderId }), noAbort());
    expect((await t.payments.byOrder(shop.id, orderId)).map((p) => p.id)).toEqual([
      a.payment.id,
      b.payment.id,
    ]);
    expect(await t.payments.byKey(shop.id, a.payment.key)).toEqual(a.payment);
    expect(await t.payments.byOrder(other.id, orderId)).toEqual([]);
    expect(await t.payments.byKey(other.id, a.payment.key)).toBeUndefined();
    expect(await t.payments.byOrder(shop.id, 'not-a-uuid')).toEqual([]);
  });
});
