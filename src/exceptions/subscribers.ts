import type { Order, OrderFailureReason } from '../orders/index.ts';
import { ORDER_REJECTED, STATUS_EVENT_TYPES } from '../orders/index.ts';
import type { ReceivedEvent, Subscriber } from '../platform/events/index.ts';
import type { CaptureInput, CaptureMany } from './capture.ts';
import type { Classification } from './classify.ts';
import { inboundCapture } from './inbound.ts';
import type { Category, ExceptionsTrx } from './tables.ts';

const ORDER_CANCELLED = STATUS_EVENT_TYPES.cancelled;

/** The category of each reason an order fails for (orders' ORDER_FAILURE_REASONS). */
const ORDER_FAILURE_CATEGORY: Record<OrderFailureReason, Category> = {
  out_of_stock: 'BUSINESS_RULE',
  payment_declined: 'BUSINESS_RULE',
  payment_error: 'SYSTEM_ERROR',
  timeout: 'TIMEOUT',
  validation: 'VALIDATION',
};

/** What an order's exception shares, rejected or cancelled. */
function fromOrder(order: Order, event: ReceivedEvent) {
  return {
    interfaceType: 'ORDER' as const,
    externalId: order.name,
    customerId: order.customerId,
    orderId: order.id,
    amount: order.totals.total,
    currency: order.currency,
    correlationId: order.correlationId ?? event.correlationid ?? null,
    causationId: event.id,
    sourceRef: { kind: 'order' as const, orderId: order.id },
    seenAt: event.time,
  };
}

/**
 * Mercato's own order failures. mercato.order.rejected (data: { order, reason, message }):
 * categorized by its reason code, retryable as its category is (a retry runs the checkout again).
 * mercato.order.cancelled: BUSINESS_RULE, LOW, not retryable. Their transaction ids are
 * `order:<id>:rejected` and `order:<id>:cancelled`, which inbound events may not use.
 */
export function orderCapture(event: ReceivedEvent): CaptureInput {
  if (event.type === ORDER_CANCELLED) {
    const order = event.data as Order;
    const preset: Classification = { category: 'BUSINESS_RULE', severity: 'LOW', retryable: false };
    return {
      ...fromOrder(order, event),
      transactionId: `order:${order.id}:cancelled`,
      eventType: ORDER_CANCELLED,
      operation: 'order.cancel',
      reason: `order ${order.name} cancelled${order.cancelReason ? `: ${order.cancelReason}` : ''}`,
      payload: { cancelReason: order.cancelReason, status: order.status, total: order.totals.total },
      preset,
    };
  }
  const { order, reason, message } = event.data as {
    order: Order;
    reason: OrderFailureReason;
    message: string;
  };
  const category = ORDER_FAILURE_CATEGORY[reason];
  return {
    ...fromOrder(order, event),
    transactionId: `order:${order.id}:rejected`,
    eventType: ORDER_REJECTED,
    operation: 'checkout',
    reason: `${reason}: ${message}`,
    payload: {
      reason,
      message,
      status: order.status,
      paymentStatus: order.paymentStatus,
      total: order.totals.total,
    },
    ...(category ? { preset: { category } } : {}),
  };
}

/** One captureMany per tenant of a batch (the WAL batches per tenant already: this is a guard). */
async function byTenant(
  trx: ExceptionsTrx,
  events: ReceivedEvent[],
  capture: CaptureMany,
  toInput: (event: ReceivedEvent) => CaptureInput,
) {
  const tenants = new Map<string, CaptureInput[]>();
  for (const event of events) {
    const list = tenants.get(event.tenantid) ?? [];
    list.push(toInput(event));
    tenants.set(event.tenantid, list);
  }
  for (const [tenantId, inputs] of tenants) await capture(trx, tenantId, inputs);
}

/**
 * The collector's subscribers: every message of the tenant's `interface-exceptions` (an unknown
 * or malformed one is captured as a VALIDATION exception rather than lost), and rejected and
 * cancelled orders. Both take whole delivery batches (handleMany); inbound events are captured
 * inline, in the transaction of the write that carries them.
 */
export function captureSubscribers(capture: CaptureMany): Subscriber[] {
  const subscriber = (
    name: string,
    topic: Subscriber['topic'],
    types: string[],
    toInput: (event: ReceivedEvent) => CaptureInput,
    inline = false,
  ): Subscriber => ({
    name,
    topic,
    types,
    inline,
    handle: (trx, event) => byTenant(trx as ExceptionsTrx, [event], capture, toInput),
    handleMany: (trx, events) => byTenant(trx as ExceptionsTrx, events, capture, toInput),
  });
  return [
    // Captured in the transaction of the tenant's write: one commit for the message and its exception.
    subscriber('exceptions.inbound', 'interface-exceptions', ['*'], inboundCapture, true),
    subscriber('exceptions.orders', 'order-events', [ORDER_REJECTED, ORDER_CANCELLED], orderCapture),
  ];
}
