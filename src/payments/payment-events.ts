import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import type { PaymentsTrx } from './tables.ts';
import type { Payment } from './views.ts';

export const TOPIC = 'payment-events';

export type PaymentEventVerb =
  | 'initiated'
  | 'authorized'
  | 'completed'
  | 'failed'
  | 'voided'
  | 'refund-initiated'
  | 'refund-completed'
  | 'refund-failed';

/** `mercato.payment.<verb>` about the payment, its data the payment after the change. */
export const paymentEvent = (verb: PaymentEventVerb, payment: Payment): DomainEvent => ({
  type: `mercato.payment.${verb}`,
  subject: payment.id,
  data: payment,
});

/** Publishes to the tenant's payment-events in trx, so the events commit with the change. */
export async function publish(
  events: EventBus,
  trx: PaymentsTrx,
  tenantId: string,
  list: DomainEvent[],
  meta?: EventMeta,
): Promise<void> {
  if (list.length === 0) return;
  await events.publish(trx, tenantId, TOPIC, list, meta);
}

export const REFUND_RECHECK_TYPE = 'mercato.payment.refund-recheck';
/** The longest wait between two questions to the provider about a refund still pending. */
export const REFUND_RECHECK_MAX_MS = 300_000;

export type RefundRecheck = { refundId: string; paymentId: string; attempt: number };

/**
 * A refund's recheck (refund-recheck.ts): a delayed message in the tenant's payment-events,
 * written with the refund (pending), due when the refund's call has had its time (`firstMs`: the
 * step timeout and a second), then twice as far apart each time (at most REFUND_RECHECK_MAX_MS).
 */
export function refundRecheckEvent(
  refund: Omit<RefundRecheck, 'attempt'>,
  firstMs: number,
  attempt = 1,
): DomainEvent {
  const backoff = firstMs * 2 ** Math.min(attempt - 1, 30);
  return {
    type: REFUND_RECHECK_TYPE,
    subject: `refund-${refund.refundId}`,
    data: { refundId: refund.refundId, paymentId: refund.paymentId, attempt } satisfies RefundRecheck,
    delayMs: Math.max(Math.min(backoff, REFUND_RECHECK_MAX_MS), firstMs),
    internal: true,
  };
}
