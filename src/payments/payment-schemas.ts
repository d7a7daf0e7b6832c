import { Type } from 'typebox';
import { DOCUMENT_AS, Nullable, SECURED } from '../platform/http/index.ts';
import { FAILURE_CODES, PAYMENT_STATUSES } from './payment-machine.ts';
import { PROVIDERS } from './providers/registry.ts';

export const SECURITY = SECURED as Record<string, string[]>[];

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ format: 'date-time' });
const Amount = Type.Integer({
  minimum: 1,
  maximum: Number.MAX_SAFE_INTEGER,
  description: 'Minor units of the currency (cents)',
});
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217' });
const Key = Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' });
const Reason = Type.String({ minLength: 1, maxLength: 500 });

export const IdParams = Type.Object({ id: Uuid });
export const OrderParams = Type.Object({ orderId: Uuid });

export const PaymentView = Type.Object(
  {
    id: Uuid,
    orderId: Uuid,
    key: Type.String({ description: 'Idempotency key of the payment, unique per tenant' }),
    amount: Type.Integer(),
    currency: Type.String(),
    status: Type.Enum([...PAYMENT_STATUSES]),
    provider: Type.String(),
    providerTransactionId: Nullable(Type.String()),
    refundedAmount: Type.Integer(),
    failureCode: Nullable(Type.String({ description: `One of ${FAILURE_CODES.join(', ')}` })),
    failureMessage: Nullable(Type.String()),
    processedAt: Nullable(Time),
    createdAt: Time,
    updatedAt: Time,
  },
  { title: 'Payment' },
);

export const PaymentList = Type.Object({ items: Type.Array(PaymentView) });

export const OperationView = Type.Object(
  {
    id: Uuid,
    kind: Type.Enum(['authorize', 'capture', 'void', 'refund']),
    source: Type.Enum(['call', 'webhook']),
    idempotencyKey: Type.String({ description: "The provider's idempotency key (or the webhook's id)" }),
    amount: Nullable(Type.Integer()),
    outcome: Type.String({ description: 'started until the provider answered; aborted when nobody waited' }),
    detail: Nullable(Type.String()),
    createdAt: Time,
    finishedAt: Nullable(Time),
  },
  { title: 'PaymentOperation' },
);

export const OperationList = Type.Object({ items: Type.Array(OperationView) });

export const InitiateBody = Type.Object(
  {
    orderId: Uuid,
    amount: Type.Optional(Amount),
    currency: Currency,
    provider: Type.Optional(Type.Enum([...PROVIDERS], { description: 'Default: test' })),
    token: Type.String({
      minLength: 1,
      maxLength: 200,
      description: "The provider's card token, e.g. tok_visa",
    }),
    key: Type.Optional(Key),
  },
  {
    additionalProperties: false,
    description:
      "amount defaults to the order's total when the orders module is there (else it is required); key (Default: a new one) makes the payment idempotent, except `order-<orderId>` (any case), the key of the payment the order's checkout takes: 400 VALIDATION_FAILED naming /key",
  },
);

export const FailBody = Type.Object({ reason: Reason }, { additionalProperties: false });

export const RefundBody = Type.Object(
  {
    amount: Type.Optional(Amount),
    reason: Reason,
    refundKey: Type.Optional(Key),
  },
  {
    additionalProperties: false,
    description:
      'amount defaults to all not yet refunded; refundKey (Default: the Idempotency-Key header, else a new one) makes the refund idempotent',
  },
);

/** The webhook the test PSP sends when a pending authorization settles (validated by hand once verified). */
const TestPspEventDoc = Type.Object(
  {
    id: Type.String(),
    type: Type.Enum(['charge.authorized', 'charge.failed']),
    created: Type.Integer(),
    data: Type.Object({
      merchantId: Uuid,
      transactionId: Type.String(),
      authorizationKey: Type.String(),
      amount: Type.Integer(),
      currency: Nullable(Type.String()),
      status: Type.Enum(['authorized', 'failed']),
      failureCode: Nullable(Type.String()),
      failureMessage: Nullable(Type.String()),
    }),
  },
  { title: 'TestPspWebhook' },
);

/** The raw body, as signed: the handler verifies the signature over these very bytes before parsing. */
export const WebhookBody = Type.String({ [DOCUMENT_AS]: TestPspEventDoc });

export const WebhookAnswer = Type.Object({
  received: Type.Boolean(),
  effect: Type.Enum(['applied', 'duplicate', 'ignored'], {
    description: 'duplicate: this webhook-id was applied before; ignored: the payment had moved on',
  }),
  paymentId: Uuid,
});
