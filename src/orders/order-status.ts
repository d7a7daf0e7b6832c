import { stateMachine } from '../platform/state-machine.ts';

export const ORDER_STATUSES = [
  'created',
  'inventory_reserved',
  'payment_processing',
  'completed',
  'failed',
  'cancelled',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * The order lifecycle the checkout saga drives: stock reserved, payment taken, completed; any step
 * may fail or be cancelled, and a completed order may still be cancelled (then refunded).
 * failed and cancelled are final.
 */
export const orderStatus = stateMachine<OrderStatus>('order', {
  created: ['inventory_reserved', 'failed', 'cancelled'],
  inventory_reserved: ['payment_processing', 'failed', 'cancelled'],
  payment_processing: ['completed', 'failed', 'cancelled'],
  completed: ['cancelled'],
  failed: [],
  cancelled: [],
});

/** Where the order's money stands; set by the saga, no machine (the payment has its own). */
export const ORDER_PAYMENT_STATUSES = [
  'not_paid',
  'pending',
  'authorized',
  'captured',
  'partially_refunded',
  'refunded',
  'voided',
  'failed',
] as const;
export type OrderPaymentStatus = (typeof ORDER_PAYMENT_STATUSES)[number];

/** Why an order failed (a cancellation keeps its own reason text instead). */
export const ORDER_FAILURE_REASONS = [
  'out_of_stock',
  'payment_declined',
  'payment_error',
  'timeout',
  'validation',
] as const;
export type OrderFailureReason = (typeof ORDER_FAILURE_REASONS)[number];
