export type { OrdersModuleDeps } from './deps.ts';
export { createOrders, type OrdersModule } from './module.ts';
export {
  ORDER_REJECTED,
  ORDER_UPDATED,
  STATUS_EVENT_TYPES,
  TOPIC as ORDER_TOPIC,
} from './order-events.ts';
export { OrderStatusView, OrderSummaryView, OrderView } from './order-schemas.ts';
export {
  ORDER_FAILURE_REASONS,
  ORDER_PAYMENT_STATUSES,
  ORDER_STATUSES,
  type OrderFailureReason,
  type OrderPaymentStatus,
  type OrderStatus,
  orderStatus,
} from './order-status.ts';
export type {
  NewOrder,
  NewOrderLine,
  Order,
  OrderFailure,
  OrderHistoryEntry,
  OrderLine,
  OrderTotals,
} from './order-view.ts';
export type { OrderChange, OrdersApi } from './orders-api.ts';
export type { OrderAddress, OrderShippingOption } from './tables.ts';
