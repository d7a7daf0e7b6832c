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
