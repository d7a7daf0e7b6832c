import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import type { OrderStatus } from './order-status.ts';
import type { Order, OrderFailure } from './order-view.ts';
import type { OrdersTrx } from './tables.ts';

export const TOPIC = 'order-events';

/** The event type announcing that an order reached each status. */
export const STATUS_EVENT_TYPES: Record<OrderStatus, string> = {
  created: 'mercato.order.created',
  inventory_reserved: 'mercato.order.reserved',
  payment_processing: 'mercato.order.payment-processing',
  completed: 'mercato.order.completed',
  failed: 'mercato.order.failed',
  cancelled: 'mercato.order.cancelled',
};
export const ORDER_UPDATED = 'mercato.order.updated';
/** Published with mercato.order.failed, for the exception collector: { order, reason, message }. */
export const ORDER_REJECTED = 'mercato.order.rejected';

export const orderEvent = (type: string, order: Order): DomainEvent => ({
  type,
  subject: order.id,
  data: order,
});

export const rejectedEvent = (order: Order, failure: OrderFailure): DomainEvent => ({
  type: ORDER_REJECTED,
  subject: order.id,
  data: { order, reason: failure.reason, message: failure.message },
});

/** Publishes to the tenant's order-events in trx, so the events commit with the change. */
export async function publish(
  events: EventBus,
  trx: OrdersTrx,
  tenantId: string,
  list: DomainEvent[],
  meta?: EventMeta,
): Promise<void> {
  if (list.length === 0) return;
  await events.publish(trx, tenantId, TOPIC, list, meta);
}
