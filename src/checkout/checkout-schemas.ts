import { Type } from 'typebox';
import { ORDER_STATUSES } from '../orders/index.ts';
import { PROVIDERS } from '../payments/index.ts';
import { Nullable, SECURED, STOREFRONT_SECURED } from '../platform/http/index.ts';
import { STEP_NAMES } from './tables.ts';

export const STOREFRONT_SECURITY = STOREFRONT_SECURED;
export const STAFF_SECURITY = SECURED as Record<string, string[]>[];

const Time = Type.String({ format: 'date-time' });

export const PlaceOrderBody = Type.Object(
  {
    cartId: Type.Optional(
      Type.String({
        format: 'uuid',
        description: "The cart to check out (default: the shopper's own); staff must name it",
      }),
    ),
    lines: Type.Optional(
      Type.Array(
        Type.Object(
          {
            variantId: Type.String({ format: 'uuid' }),
            quantity: Type.Integer({ minimum: 1, maximum: 1000 }),
          },
          { additionalProperties: false },
        ),
        {
          minItems: 1,
          maxItems: 100,
          description:
            'Staff only, instead of cartId: the order from these lines (a draft cart is made of them)',
        },
      ),
    ),
    currency: Type.Optional(
      Type.String({ pattern: '^[A-Z]{3}$', description: 'With lines: the ISO 4217 currency of the order' }),
    ),
    shippingAddress: Type.Optional(
      Type.Unknown({
        description: 'With lines: the inline address to ship to (as PUT /cart/addresses takes it)',
      }),
    ),
    billingAddress: Type.Optional(Type.Unknown({ description: 'With lines: the inline billing address' })),
    shippingOptionId: Type.Optional(Type.String({ format: 'uuid', description: 'With lines: how to ship' })),
    email: Type.Optional(
      Type.String({ format: 'email', maxLength: 320, description: 'Where the order confirmation goes' }),
    ),
    payment: Type.Object(
      {
        provider: Type.Optional(
          Type.Enum([...PROVIDERS], { description: 'The payment provider (Default: test)' }),
        ),
        token: Type.String({
          pattern: '^[\\x21-\\x7e]{1,200}$',
          description:
            "The provider's payment token (never a card number), e.g. tok_visa for the test provider",
        }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const CancelBody = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) },
  { additionalProperties: false },
);

export const StatusBody = Type.Object(
  {
    status: Type.Enum([...ORDER_STATUSES]),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
  },
  { additionalProperties: false },
);

// An id that is no UUID names no order: 404, not 400.
export const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

const StepView = Type.Object({
  step: Type.Enum([...STEP_NAMES]),
  action: Type.Enum(['invoke', 'compensate']),
  attempt: Type.Integer({ minimum: 1 }),
  status: Type.Enum(['started', 'succeeded', 'failed']),
  output: Type.Unknown(),
  error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
  startedAt: Time,
  finishedAt: Nullable(Time),
  durationMs: Nullable(Type.Integer({ minimum: 0 })),
});

/** The saga of an order: where it stands and its transaction log (001 Task 6). */
export const SagaView = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    orderId: Type.String({ format: 'uuid' }),
    status: Type.Enum(['running', 'compensating', 'completed', 'failed', 'cancelled']),
    step: Type.Enum([...STEP_NAMES]),
    failure: Nullable(Type.Object({ reason: Type.String(), code: Type.String(), message: Type.String() })),
    cancelRequested: Nullable(Type.Object({ actor: Type.String(), reason: Type.String() })),
    deadlineAt: Nullable(Time),
    createdAt: Time,
    updatedAt: Time,
    finishedAt: Nullable(Time),
    steps: Type.Array(StepView),
  },
  { title: 'CheckoutSaga' },
);
