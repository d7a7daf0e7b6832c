import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../platform/http/index.ts';
import { PAYMENT_STATUSES, type Payment, type PaymentStatus, paymentMachine } from './index.ts';
import {
  authorizeInput,
  createShop,
  deliver,
  noAbort,
  type PaymentsTestApp,
  pspCharge,
  type Shop,
  startPaymentsApp,
} from './payments-test-fixtures.ts';

/**
 * Property: whatever sequence of captures, voids, refunds, repeated authorizations and webhook
 * settlements a payment goes through, every status change it shows is one the machine allows,
 * an illegal step changes nothing, the refunded amount stays within the captured one, and the
 * PSP's books agree with the payment: captured once at most, refunded exactly what Mercato says,
 * nothing held once the payment failed or was voided. FC_SEED / FC_RUNS replay or extend it.
 */

let t: PaymentsTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startPaymentsApp();
  shop = await createShop(t, 'prop-shop');
});
afterAll(() => t.close());

const RUNS = {
  numRuns: Number(process.env['FC_RUNS'] ?? 25),
  ...(process.env['FC_SEED'] ? { seed: Number(process.env['FC_SEED']) } : {}),
};

type Step =
  | { kind: 'authorize' | 'capture' | 'void' }
  | { kind: 'refund'; amount: number | undefined; refundKey: string }
  | { kind: 'settle'; outcome: 'authorized' | 'failed' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constantFrom<Step>({ kind: 'authorize' }, { kind: 'capture' }, { kind: 'void' }),
  fc.record({
    kind: fc.constant('refund' as const),
    amount: fc.option(fc.integer({ min: 1, max: 1200 }), { nil: undefined }),
    refundKey: fc.constantFrom('r1', 'r2', 'r3'),
  }),
  fc.record({
    kind: fc.constant('settle' as const),
    outcome: fc.constantFrom('authorized' as const, 'failed' as const),
  }),
);

const token = fc.constantFrom(
  'tok_visa',
  'tok_pending',
  'tok_card_declined',
  'tok_insufficient_funds',
  'tok_processing_error',
);

/** The business refusals a step may meet; anything else is a bug. */
const REFUSALS = ['ILLEGAL_TRANSITION', 'REFUND_EXCEEDS_CAPTURED', 'IDEMPOTENCY_KEY_REUSED'];
const CAPTURED: readonly string[] = ['completed', 'partially_refunded', 'refunded'];

describe('payment transitions', () => {
  it('the machine refuses exactly the moves it does not list, naming both states', () => {
    const status = fc.constantFrom(...PAYMENT_STATUSES);
    fc.assert(
      fc.property(status, status, (from, to) => {
        const refusal = (() => {
          try {
            paymentMachine.assert(from, to);
            return undefined;
          } catch (error) {
            return error as AppError;
          }
        })();
        expect(refusal === undefined).toBe(paymentMachine.can(from, to));
        if (refusal) expect(refusal.extras).toMatchObject({ from, to, resource: 'payment' });
      }),
    );
    for (const final of ['failed', 'voided', 'refunded'] as const)
      expect(paymentMachine.isFinal(final)).toBe(true);
  });

  it('keeps every payment and the PSP consistent over random sequences of steps', async () => {
    await fc.assert(
      fc.asyncProperty(token, fc.array(step, { maxLength: 7 }), async (card, steps) => {
        const input = authorizeInput(card, { amount: 1000 });
        const first = await t.payments.authorize(shop.id, input, noAbort());
        let before: Payment = first.payment;
        expect(['authorized', 'processing', 'failed']).toContain(before.status);

        for (const s of steps) {
          const run = async () => {
            switch (s.kind) {
              case 'authorize':
                return t.payments.authorize(shop.id, input, noAbort());
              case 'capture':
                return t.payments.capture(shop.id, input.key, noAbort());
              case 'void':
                return t.payments.void(shop.id, input.key, 'property', noAbort());
              case 'refund':
                return t.payments.refund(shop.id, input.key, { ...s, reason: 'property' }, noAbort());
              case 'settle': {
                if (!before.providerTransactionId) return undefined;
                // The PSP refuses to settle a charge that is not pending: nothing is sent then.
                const delivery = await t.payments.testProvider
                  .settlePending(before.providerTransactionId, s.outcome)
                  .catch(() => undefined);
                if (delivery) expect((await deliver(t, delivery)).statusCode).toBe(200);
                return undefined;
              }
            }
          };
          const refusal = await run().then(
            () => undefined,
            (error: unknown) => error,
          );
          const after = (await t.payments.byKey(shop.id, input.key))!;
          if (refusal !== undefined) {
            expect(refusal).toBeInstanceOf(AppError);
            expect(REFUSALS, `${s.kind}: ${(refusal as Error).message}`).toContain(
              (refusal as AppError).code,
            );
            expect(after).toEqual(before);
          }
          if (after.status !== before.status) {
            expect(
              paymentMachine.can(before.status, after.status),
              `${before.status} → ${after.status}`,
            ).toBe(true);
          }
          expect(after.refundedAmount).toBeGreaterThanOrEqual(0);
          expect(after.refundedAmount).toBeLessThanOrEqual(after.amount);
          expect(after.status === 'refunded').toBe(after.refundedAmount === after.amount);
          if (after.status === 'partially_refunded') expect(after.refundedAmount).toBeGreaterThan(0);
          if (!CAPTURED.includes(after.status)) expect(after.refundedAmount).toBe(0);
          before = after;
        }

        const { charge, operations } = await pspCharge(t, shop.id, `authorize:${input.key}`);
        const status: PaymentStatus = before.status;
        expect(
          operations.filter(
            (o) => o.kind === 'capture' && (o.result as { status: string }).status === 'captured',
          ).length,
        ).toBeLessThanOrEqual(1);
        if (CAPTURED.includes(status)) {
          expect(charge).toMatchObject({
            status: 'captured',
            capturedAmount: 1000,
            refundedAmount: before.refundedAmount,
          });
        } else {
          expect(charge?.capturedAmount ?? 0).toBe(0);
        }
        if (status === 'authorized') expect(charge?.status).toBe('authorized');
        // Nothing is held for a payment that failed or was voided.
        if (status === 'failed' || status === 'voided')
          expect(['pending', 'authorized']).not.toContain(charge?.status);
      }),
      RUNS,
    );
  });
});
