import { Type } from 'typebox';

// The bodies and answers of POST /wal/write and POST /wal/write/batch (write-routes.ts).

const NAMESPACE = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'The WAL namespace' });
/** A message's own id, as the write routes (and `mercato wal write`) take it. */
export const MESSAGE_ID = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'Your id for the message (visible ASCII); writing it again with the same body is a no-op',
});

/** A message's ordering key, as the write routes (and `mercato wal write`) take it. */
export const MESSAGE_KEY = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'Ordering key: same key, delivered in order',
});

const MessageFields = {
  payload: Type.Unknown({ description: 'Any JSON value; checked against the namespace payload schema' }),
  lifecycle: Type.Optional(
    Type.Object(
      {
        delay: Type.Optional(
          Type.Integer({ minimum: 0, description: 'Deliver after this many milliseconds' }),
        ),
        maxAttempts: Type.Optional(
          Type.Integer({ minimum: 1, maximum: 1000, description: 'Overrides the namespace maximum' }),
        ),
      },
      { additionalProperties: false },
    ),
  ),
  key: Type.Optional(MESSAGE_KEY),
  messageId: Type.Optional(MESSAGE_ID),
  headers: Type.Optional(
    Type.Record(
      Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$" }),
      Type.String({ maxLength: 4096 }),
      {
        maxProperties: 50,
      },
    ),
  ),
};

export const WriteBody = Type.Object(
  { namespace: NAMESPACE, ...MessageFields },
  { additionalProperties: false },
);
export const BatchBody = Type.Object(
  {
    namespace: NAMESPACE,
    messages: Type.Array(Type.Object(MessageFields, { additionalProperties: false }), {
      minItems: 1,
      maxItems: 1000,
    }),
  },
  { additionalProperties: false },
);

export const Receipt = Type.Object({
  messageId: Type.String(),
  status: Type.Union([Type.Literal('accepted'), Type.Literal('scheduled')]),
  durabilityStatus: Type.Union([Type.Literal('persisted'), Type.Literal('scheduled')]),
  backend: Type.String({
    description: 'The backend that took the write (a fallback when the primary is down)',
  }),
  timestamp: Type.String({ format: 'date-time' }),
  estimatedProcessingTime: Type.String({ format: 'date-time', description: 'When delivery is due' }),
});
export const BatchReceipt = Type.Object({ namespace: Type.String(), messages: Type.Array(Receipt) });
