import { Type } from 'typebox';
import { PROVIDERS } from '../payments/index.ts';
import { Nullable, SECURED } from '../platform/http/index.ts';

export const SECURITY = SECURED as Record<string, string[]>[];

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ format: 'date-time' });
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code' });
const Money = Type.Integer({ minimum: 0, maximum: 100_000_000_000, description: 'Minor units' });
const Priority = Type.Union(
  [Type.Literal('low'), Type.Literal('normal'), Type.Literal('high'), Type.Literal('urgent')],
  { description: "002's OrderPriority: the payment queue serves higher priorities' orders first" },
);
const Name = Type.String({ minLength: 1, maxLength: 200 });
const Units = Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Units allotted to the sale' });
const Limit = Type.Integer({ minimum: 1, maximum: 1000, description: 'Units one customer may buy' });
const Window = Type.Integer({
  minimum: 1,
  maximum: 1440,
  description: 'Minutes an admitted buyer without a payment token has to pay',
});

export const IdParams = Type.Object({ id: Uuid });

export const CampaignStatus = Type.Union([
  Type.Literal('scheduled'),
  Type.Literal('live'),
  Type.Literal('sold_out'),
  Type.Literal('ended'),
  Type.Literal('cancelled'),
]);

export const NewCampaignBody = Type.Object(
  {
    name: Name,
    variantId: Uuid,
    units: Units,
    salePrice: Money,
    currency: Currency,
    startsAt: Time,
    endsAt: Time,
    perCustomerLimit: Type.Optional(Limit),
    paymentWindowMinutes: Type.Optional(Window),
    priority: Type.Optional(Priority),
  },
  { additionalProperties: false },
);

export const CampaignPatchBody = Type.Object(
  {
    name: Type.Optional(Name),
    units: Type.Optional(Units),
    salePrice: Type.Optional(Money),
    startsAt: Type.Optional(Time),
    endsAt: Type.Optional(Time),
    perCustomerLimit: Type.Optional(Limit),
    paymentWindowMinutes: Type.Optional(Window),
    priority: Type.Optional(Priority),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const CancelBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })) },
  { additionalProperties: false },
);

export const CampaignView = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    variantId: Uuid,
    productId: Uuid,
    sku: Type.String(),
    title: Type.String(),
    variantTitle: Type.String(),
    currency: Type.String(),
    salePrice: Type.Integer(),
    units: Type.Integer({
      description:
        'Units allotted; lowered (to 0 at least) when a running sale finds its pool holding fewer than units - admitted',
    }),
    perCustomerLimit: Type.Integer(),
    paymentWindowMinutes: Type.Integer(),
    priority: Priority,
    startsAt: Time,
    endsAt: Time,
    status: CampaignStatus,
    admitted: Type.Integer({ description: 'Units held by admitted, paying and paid orders' }),
    sold: Type.Integer({ description: 'Units of paid orders' }),
    released: Type.Integer({ description: 'Units given back by failed or late payments' }),
    remaining: Type.Integer({ description: 'units - admitted' }),
    cancelledAt: Nullable(Time),
    cancelReason: Nullable(Type.String()),
    settledAt: Nullable(
      Type.String({ format: 'date-time', description: 'When the unsold pool went back to stock' }),
    ),
    createdAt: Time,
    updatedAt: Time,
  },
  { title: 'FlashSale' },
);

export const ListQuery = Type.Object(
  {
    status: Type.Optional(CampaignStatus),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const CampaignPage = Type.Object({
  items: Type.Array(CampaignView),
  nextCursor: Nullable(Type.String()),
});

const PaymentInput = Type.Object(
  {
    // Only a provider Mercato has: another one would fail the payment queue's batch (its saga cannot start).
    provider: Type.Optional(
      Type.Enum([...PROVIDERS], { description: 'The payment provider (Default: test)' }),
    ),
    token: Type.String({ minLength: 1, maxLength: 200, description: 'A payment token; never card numbers' }),
  },
  { additionalProperties: false },
);

export const AdmissionBody = Type.Object(
  {
    quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 1' })),
    payment: Type.Optional(PaymentInput),
    shippingAddressId: Type.Optional(
      Type.String({ format: 'uuid', description: "One of the customer's addresses; default: their default" }),
    ),
  },
  { additionalProperties: false },
);

export const AdmissionView = Type.Object(
  {
    orderId: Uuid,
    campaignId: Uuid,
    quantity: Type.Integer(),
    status: Type.Union([
      Type.Literal('admitted'),
      Type.Literal('paying'),
      Type.Literal('paid'),
      Type.Literal('released'),
    ]),
    paymentDeadline: Time,
    admittedAt: Time,
  },
  { title: 'FlashSaleAdmission' },
);

export const PayBody = Type.Object({ payment: PaymentInput }, { additionalProperties: false });

const Rate = Type.Number({ description: 'Admissions per second' });
const Ms = Nullable(Type.Number({ description: 'Milliseconds; null before any answer' }));
const Breaker = Type.Union([Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open')]);

export const StatsView = Type.Object(
  {
    campaignId: Uuid,
    status: CampaignStatus,
    units: Type.Integer(),
    attempts: Type.Integer({ description: 'Attempts answered by this process, their token verified' }),
    admitted: Type.Integer({ description: 'Units ever admitted (the record), released ones included' }),
    rejected: Type.Record(Type.String(), Type.Integer(), {
      description:
        'Attempts refused by this process, by reason (sold_out, limit_reached, not_live, rate_limited, unavailable, invalid, duplicate)',
    }),
    unverifiedSoldOut: Type.Integer({
      description:
        'SOLD_OUT answers this process gave from its sold-out memory before verifying the caller’s token (anyone knowing the sale’s id can cause them): not in attempts, rejected or latency',
    }),
    paid: Type.Integer(),
    pendingPayment: Type.Integer({ description: 'Units of admitted orders not yet handed to the saga' }),
    paying: Type.Integer({ description: 'Units of orders whose checkout saga runs' }),
    released: Type.Integer({ description: 'Units given back by failed or late payments' }),
    remaining: Type.Integer(),
    revenue: Type.Integer({ description: 'paid × sale price, minor units' }),
    currency: Type.String(),
    conversion: Nullable(Type.Number({ description: 'paid units / attempts seen by this process' })),
    admissionsPerSecond: Type.Object({ last1s: Rate, last10s: Rate, last60s: Rate }),
    admissionLatencyMs: Type.Object({ p50: Ms, p99: Ms }),
    queues: Type.Object({
      admissionsWaitingForCommit: Type.Integer(),
      ordersWaitingForPayment: Type.Integer({
        description: 'Units of admitted orders with a token, queued for the saga',
      }),
    }),
    breakers: Type.Object({ database: Breaker, payments: Breaker }),
    at: Time,
  },
  { title: 'FlashSaleStats' },
);
