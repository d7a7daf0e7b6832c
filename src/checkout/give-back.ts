import type { Payment } from '../payments/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { StepContext } from './step-definition.ts';

/** A payment's status once given back, or 'none' for a payment that no longer exists. */
type Given = string;

/**
 * What undoing an order's money did: the saga's own payment's end (its status, 'none' when it has
 * none), as the log has always shown it; with the order's other payments (staff's, POST
 * /payments), each one's end by payment id.
 */
export type GivenBack = Given | { payment: Given; others: Record<string, Given> };

/** The saga's own payment's end in what giveBack returned (the order's payment status follows it). */
export const ownPaymentEnd = (output: unknown): unknown =>
  output !== null && typeof output === 'object' && 'payment' in output ? output.payment : output;

/**
 * Gives back every payment of the order that holds money, the saga's own (`ownKey`) and any staff
 * made for it: a captured one refunded (all that is left), an authorization (or one never learnt,
 * or never sent) voided; one whose void the provider refuses because it captured it after all (a
 * capture whose answer was lost) has that capture answered by its key, then is refunded. Each is idempotent by its own key: refunds by (payment, `<ownKey>-refund`;
 * then `<ownKey>-refund-2`, … while a key already used for less than all leaves money held, or
 * names a refund the provider refused), voids by the payment's key, so a compensation run again
 * never refunds twice. A payment whose money is all refunded or held by refunds under way has
 * nothing left to give.
 */
export async function giveBack(c: StepContext, ownKey: string): Promise<GivenBack> {
  const { deps, saga, order, signal, meta } = c;
  const payments = await deps.payments.byOrder(saga.tenantId, order.id);
  const one = async (payment: Payment): Promise<Given> => {
    if (payment.status === 'completed' || payment.status === 'partially_refunded') {
      let status: Given = payment.status;
      // A refund key already used for less than all (staff may name any refundKey, this one
      // too) answers that refund and leaves money held: the rest goes under the next key.
      for (let n = 1; status !== 'refunded'; n++) {
        try {
          const refunded = await deps.payments.refund(
            saga.tenantId,
            payment.key,
            {
              reason: saga.failure?.message ?? 'order cancelled',
              refundKey: n === 1 ? `${ownKey}-refund` : `${ownKey}-refund-${n}`,
            },
            signal,
            meta,
          );
          status = refunded.status;
        } catch (error) {
          // Refunds under way (staff's) already take all that is left.
          if (error instanceof AppError && error.code === 'REFUND_EXCEEDS_CAPTURED') return status;
          // A key whose refund the provider refused in an earlier attempt moved no money and is
          // spent: the rest is asked for under the next key (a refusal now fails this attempt, so
          // each attempt asks the provider once more at most).
          if (
            error instanceof AppError &&
            error.code === 'PAYMENT_PROVIDER_ERROR' &&
            error.extras['refused'] === 'earlier'
          ) {
            continue;
          }
          throw error;
        }
      }
      return status;
    }
    if (payment.status === 'refunded' || payment.status === 'failed' || payment.status === 'voided') {
      return payment.status;
    }
    try {
      const voided = await deps.payments.void(
        saga.tenantId,
        payment.key,
        saga.failure?.message ?? 'checkout failed',
        signal,
        meta,
      );
      return voided?.status ?? 'none';
    } catch (error) {
      // The provider refuses to void a charge it captured: a capture whose answer was never
      // recorded (the process died during the call). Asked again under its own key, the
      // provider answers it, and the payment, completed, is refunded.
      // Anything else (no capture was started, the provider refuses it too) fails the attempt
      // with the void's refusal; so does a void that never reached the provider (no answer says
      // it captured anything): a capture asked for then would charge a customer whose capture
      // never reached the provider either, for an order being undone.
      if (!(error instanceof AppError) || error.extras['refused'] !== 'now') throw error;
      const captured = await deps.payments
        .resumeCapture(saga.tenantId, payment.key, signal, meta)
        .catch(() => undefined);
      if (captured?.status !== 'completed') throw error;
      return one(captured);
    }
  };
  const own = payments.find((p) => p.key === ownKey);
  const ownEnd = own ? await one(own) : 'none';
  const others: Record<string, Given> = {};
  for (const payment of payments) {
    if (payment.key !== ownKey) others[payment.id] = await one(payment);
  }
  return Object.keys(others).length === 0 ? ownEnd : { payment: ownEnd, others };
}
