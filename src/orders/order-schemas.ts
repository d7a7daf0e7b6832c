import { type Static, Type } from 'typebox';
import { CartAddressView } from '../cart/index.ts';
import { Nullable, SECURED, STOREFRONT_SECURED } from '../platform/http/index.ts';
import { ORDER_FAILURE_REASONS, ORDER_PAYMENT_STATUSES, ORDER_STATUSES } from './order-status.ts';

/** Order reads: a customer, staff, or a guest (X-Tenant and X-Cart-Token) without a credential. */
export const STOREFRONT_SECURITY = STOREFRONT_SECURED;
export const STAFF_SECURITY = SECURED as Record<string, string[]>[];

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ format: 'date-time' });
const Money = Type.Integer({ minimum: 0, description: 'Integer minor units of the currency' });
export const Status = Type.Enum([...ORDER_STATUSES]);
export const PaymentStatus = Type.Enum([...ORDER_PAYMENT_STATUSES]);
const FailureReason = Type.Enum([...ORDER_FAILURE_REASONS]);

// The order keeps the addresses the cart held.
const AddressView = CartAddressView;

const LineView = Type.Object({
  id: Uuid,
  variantId: Uuid,
  productId: Uuid,
  sku: Type.String(),
  title: Type.String(),
  variantTitle: Type.String(),
  quantity: Type.Integer({ minimum: 1 }),
  unitPrice: Money,
  tax: Money,
  lineTotal: Money,
});

const TotalsView = Type.Object({
  subtotal: Money,
  discount: Money,
  shipping: Money,
  tax: Money,
  total: Money,
  taxRateBps: Type.Integer(),
  pricesIncludeTax: Type.Boolean(),
});

const FailureView = Nullable(
  Type.Object({ reason: FailureReason, message: Type.String() }, { description: 'Why the order failed' }),
);

const HistoryEntryView = Type.Object({
  id: Uuid,
  from: Nullable(Status),
  to: Status,
  actor: Type.String(),
  reason: Nullable(Type.String()),
  at: Time,
});

const summaryFields = {
  id: Uuid,
  number: Type.Integer({ minimum: 1001, description: 'Per store, from 1001 up' }),
  name: Type.String({ description: 'For display: #1001' }),
  customerId: Nullable(Uuid),
  email: Nullable(Type.String()),
  status: Status,
  paymentStatus: PaymentStatus,
  currency: Type.String(),
  itemCount: Type.Integer(),
  totals: TotalsView,
  failure: FailureView,
  cancelReason: Nullable(Type.String()),
  completedAt: Nullable(Time),
  cancelledAt: Nullable(Time),
  createdAt: Time,
  updatedAt: Time,
};

/**
 * An order as every route that answers one shows it (the checkout's routes too); the routes'
 * type provider checks the Order type against it.
 */
export const OrderView = Type.Object(
  {
    ...summaryFields,
    lines: Type.Array(LineView),
    shippingAddress: Nullable(AddressView),
    billingAddress: Nullable(AddressView),
    shippingOption: Nullable(Type.Object({ id: Type.String(), name: Type.String(), price: Money })),
    cartId: Nullable(Uuid),
    correlationId: Nullable(Type.String()),
    history: Type.Array(HistoryEntryView, { description: 'Every status the order took, oldest first' }),
  },
  { title: 'Order' },
);

/** An order in a list: no lines, addresses or history (GET /orders/{id} has them). */
export const OrderSummaryView = Type.Object(summaryFields, { title: 'OrderSummary' });
export type OrderSummary = Static<typeof OrderSummaryView>;

/** Where an order stands, for polling: GET /orders/{id}/status. */
export const OrderStatusView = Type.Object(
  {
    id: Uuid,
    number: Type.Integer(),
    name: Type.String(),
    status: Status,
    paymentStatus: PaymentStatus,
    failure: FailureView,
    updatedAt: Time,
  },
  { title: 'OrderStatus' },
);
export type OrderStatusBody = Static<typeof OrderStatusView>;

// Not `format: uuid`: an id that is no UUID names no order, which is a 404, not a 400.
const AnyId = Type.String({ minLength: 1, maxLength: 200, description: 'A UUID; anything else is 404' });
export const IdParams = Type.Object({ id: AnyId });
export const UserParams = Type.Object({ userId: AnyId });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'The nextCursor of the previous page' }),
  ),
};

// A date-time of 64 characters holds any offset and nanoseconds: PostgreSQL refuses a longer one
// (its fraction of a second past about 100 digits) with an error that was a 500.
const CreatedAt = (description: string) =>
  Type.Optional(Type.String({ format: 'date-time', maxLength: 64, description }));

const listFilters = {
  status: Type.Optional(Status),
  createdFrom: CreatedAt('Created at or after'),
  createdTo: CreatedAt('Created before'),
};

export const ListQuery = Type.Object(
  {
    ...PageQuery,
    ...listFilters,
    customerId: Type.Optional(Type.String({ format: 'uuid', description: 'Staff only' })),
  },
  { additionalProperties: false },
);
export type ListQueryType = Static<typeof ListQuery>;

export const UserListQuery = Type.Object({ ...PageQuery, ...listFilters }, { additionalProperties: false });

export const OrderPage = Type.Object({
  items: Type.Array(OrderSummaryView),
  nextCursor: Nullable(Type.String()),
});
