import type { ColumnType, Kysely, Transaction } from 'kysely';
import type { CartAddress } from '../cart/index.ts';
import type { OrderFailureReason, OrderPaymentStatus, OrderStatus } from './order-status.ts';

type Timestamp = ColumnType<Date | string, Date | string | undefined, Date | string>;
/** A jsonb column: read parsed, written as JSON text. */
type Json<T> = ColumnType<T, string | null, string | null>;
/** A bigint column: pg returns int8 as text, PGlite as a number. */
type Bigint = ColumnType<string | number, number, number>;

/** The addresses of an order: those of the cart it was placed from. */
export type OrderAddress = CartAddress;

/** The shipping option chosen at checkout, with the price it had then. */
export type OrderShippingOption = { id: string; name: string; price: number };

/** Migration 0024. */
export type CountersTable = {
  tenant_id: string;
  last_number: Bigint;
};

export type OrdersTable = {
  id: string;
  tenant_id: string;
  number: Bigint;
  customer_id: string | null;
  email: string | null;
  status: ColumnType<OrderStatus, OrderStatus | undefined, OrderStatus>;
  payment_status: ColumnType<OrderPaymentStatus, OrderPaymentStatus | undefined, OrderPaymentStatus>;
  currency: string;
  shipping_address: Json<OrderAddress | null>;
  billing_address: Json<OrderAddress | null>;
  shipping_option: Json<OrderShippingOption | null>;
  item_count: number;
  subtotal: Bigint;
  discount: Bigint;
  shipping: Bigint;
  tax: Bigint;
  total: Bigint;
  tax_rate_bps: number;
  prices_include_tax: boolean;
  cart_id: string | null;
  idempotency_scope: string;
  idempotency_key: string;
  request_hash: string;
  correlation_id: string | null;
  failure_reason: OrderFailureReason | null;
  failure_message: string | null;
  cancel_reason: string | null;
  guest_token_hash: string | null;
  completed_at: Timestamp | null;
  cancelled_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type LinesTable = {
  id: string;
  tenant_id: string;
  order_id: string;
  variant_id: string;
  product_id: string;
  sku: string;
  title: string;
  variant_title: string;
  quantity: number;
  unit_price: Bigint;
  tax: Bigint;
  line_total: Bigint;
};

export type HistoryTable = {
  id: string;
  tenant_id: string;
  order_id: string;
  from_status: OrderStatus | null;
  to_status: OrderStatus;
  actor: string;
  reason: string | null;
  at: Timestamp;
};

export type OrderTables = {
  'orders.counters': CountersTable;
  'orders.orders': OrdersTable;
  'orders.lines': LinesTable;
  'orders.history': HistoryTable;
};

export type OrdersDb = Kysely<OrderTables>;
/** A transaction of one tenant (withTenant) over the orders' tables. */
export type OrdersTrx = Transaction<OrderTables>;
