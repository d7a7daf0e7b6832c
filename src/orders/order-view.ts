import type { Selectable } from 'kysely';
import { isoTime as iso } from '../platform/db/index.ts';
import type { OrderFailureReason, OrderPaymentStatus, OrderStatus } from './order-status.ts';
import type { HistoryTable, LinesTable, OrderAddress, OrderShippingOption, OrdersTable } from './tables.ts';

/** Amounts in integer minor units of the order's currency, as the cart computed them at checkout. */
export type OrderTotals = {
  subtotal: number;
  discount: number;
  shipping: number;
  /** Sum of the lines' tax; contained in the subtotal when prices include tax. */
  tax: number;
  total: number;
  taxRateBps: number;
  pricesIncludeTax: boolean;
};

/** A line as the checkout gives it to create(). */
export type NewOrderLine = {
  variantId: string;
  productId: string;
  sku: string;
  title: string;
  variantTitle: string;
  quantity: number;
  unitPrice: number;
  /** This line's tax (inside unitPrice × quantity when prices include tax). */
  tax: number;
  /** unitPrice × quantity, plus tax when prices exclude it. */
  lineTotal: number;
};

export type OrderLine = NewOrderLine & { id: string };

/** One status change of the audit trail; `from` is null for the creation. */
export type OrderHistoryEntry = {
  id: string;
  from: OrderStatus | null;
  to: OrderStatus;
  actor: string;
  reason: string | null;
  at: string;
};

export type OrderFailure = { reason: OrderFailureReason; message: string };

/** An order as the API, the module's functions and its events show it. */
export type Order = {
  id: string;
  /** Per tenant, from 1001 up. */
  number: number;
  /** For display: `#1001`. */
  name: string;
  customerId: string | null;
  email: string | null;
  status: OrderStatus;
  paymentStatus: OrderPaymentStatus;
  currency: string;
  lines: OrderLine[];
  /** Units over all lines. */
  itemCount: number;
  shippingAddress: OrderAddress | null;
  billingAddress: OrderAddress | null;
  shippingOption: OrderShippingOption | null;
  totals: OrderTotals;
  cartId: string | null;
  correlationId: string | null;
  failure: OrderFailure | null;
  /** The reason given when the order was cancelled. */
  cancelReason: string | null;
  completedAt: string | null;
  cancelledAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** Every status the order took, oldest first. */
  history: OrderHistoryEntry[];
};

/** What create() records. The idempotency fields and the guest token hash are kept, never shown. */
export type NewOrder = {
  /** The order's id when the caller made it already (a flash sale's admission); else a new UUIDv7. */
  id?: string;
  customerId: string | null;
  email: string | null;
  currency: string;
  lines: NewOrderLine[];
  shippingAddress: OrderAddress | null;
  billingAddress: OrderAddress | null;
  shippingOption: OrderShippingOption | null;
  totals: OrderTotals;
  cartId: string | null;
  idempotencyScope: string;
  idempotencyKey: string;
  requestHash: string;
  correlationId: string | null;
  /** SHA-256 (hex) of the guest's cart token: a guest reads the order with that token. */
  guestTokenHash: string | null;
  /** Who created it, for the history (Default: 'checkout'). */
  actor?: string;
};

const amount = (value: string | number): number => Number(value);
const time = (value: Date | string | null): string | null => (value === null ? null : iso(value));

export function toLine(row: Selectable<LinesTable>): OrderLine {
  return {
    id: row.id,
    variantId: row.variant_id,
    productId: row.product_id,
    sku: row.sku,
    title: row.title,
    variantTitle: row.variant_title,
    quantity: row.quantity,
    unitPrice: amount(row.unit_price),
    tax: amount(row.tax),
    lineTotal: amount(row.line_total),
  };
}

export function toHistoryEntry(row: Selectable<HistoryTable>): OrderHistoryEntry {
  return {
    id: row.id,
    from: row.from_status,
    to: row.to_status,
    actor: row.actor,
    reason: row.reason,
    at: iso(row.at),
  };
}

/** The order of a row, its lines and its history. */
export function toOrder(
  row: Selectable<OrdersTable>,
  lines: OrderLine[],
  history: OrderHistoryEntry[],
): Order {
  const number = amount(row.number);
  return {
    id: row.id,
    number,
    name: `#${number}`,
    customerId: row.customer_id,
    email: row.email,
    status: row.status,
    paymentStatus: row.payment_status,
    currency: row.currency,
    lines,
    itemCount: row.item_count,
    shippingAddress: row.shipping_address,
    billingAddress: row.billing_address,
    shippingOption: row.shipping_option,
    totals: {
      subtotal: amount(row.subtotal),
      discount: amount(row.discount),
      shipping: amount(row.shipping),
      tax: amount(row.tax),
      total: amount(row.total),
      taxRateBps: row.tax_rate_bps,
      pricesIncludeTax: row.prices_include_tax,
    },
    cartId: row.cart_id,
    correlationId: row.correlation_id,
    failure:
      row.failure_reason === null ? null : { reason: row.failure_reason, message: row.failure_message ?? '' },
    cancelReason: row.cancel_reason,
    completedAt: time(row.completed_at),
    cancelledAt: time(row.cancelled_at),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    history,
  };
}
