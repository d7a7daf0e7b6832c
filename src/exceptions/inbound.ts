import { type TSchema, Type } from 'typebox';
import { Compile } from 'typebox/compile';
import type { ReceivedEvent } from '../platform/events/index.ts';
import type { FieldError } from '../platform/http/index.ts';
import { fieldErrors } from '../platform/http/problem-handler.ts';
import { cutText } from '../platform/text.ts';
import type { InboundCheck } from '../wal/index.ts';
import type { CaptureInput } from './capture.ts';
import { MAX_SEARCHABLE_BYTES, tooMuchToSearch } from './searchable.ts';
import type { InterfaceType } from './tables.ts';

/**
 * The five events a tenant's systems write to `interface-exceptions` (seed 000's inbound DTOs),
 * as CloudEvents in binary mode: the type in the `ce-type` header, the event's data as the
 * message's payload. Each type's interface type, the operation used when the event names none,
 * and the id its `externalId` falls back to.
 */
export const INBOUND_EVENTS = {
  OrderRejected: { interfaceType: 'ORDER', operation: 'order.submit', externalId: 'orderId' },
  OrderCancelled: { interfaceType: 'ORDER', operation: 'order.cancel', externalId: 'orderId' },
  CollectionRejected: {
    interfaceType: 'COLLECTION',
    operation: 'collection.submit',
    externalId: 'collectionId',
  },
  DistributionFailed: {
    interfaceType: 'DISTRIBUTION',
    operation: 'distribution.send',
    externalId: undefined,
  },
  ValidationError: { interfaceType: 'VALIDATION', operation: 'validation', externalId: undefined },
} as const satisfies Record<string, { interfaceType: InterfaceType; operation: string; externalId?: string }>;
export type InboundType = keyof typeof INBOUND_EVENTS;
export const INBOUND_TYPES = Object.keys(INBOUND_EVENTS) as InboundType[];

/** Transaction ids Mercato gives its own failures; a tenant's event may not take them over. */
export const RESERVED_PREFIXES = ['order:', 'wal:'];
/** The collector's sub-routes: an exception with one of these ids could not be opened by its routes. */
export const RESERVED_IDS = ['search', 'summary', 'groups', 'rules', 'sources', 'alerts', 'settings', 'bulk'];

const Id = Type.String({ minLength: 1, maxLength: 200 });
const common = {
  transactionId: Id,
  reason: Type.String({ minLength: 1, maxLength: 4000 }),
  externalId: Type.Optional(Id),
  operation: Type.Optional(Id),
  customerId: Type.Optional(Id),
  locationCode: Type.Optional(Id),
  orderId: Type.Optional(Id),
  amount: Type.Optional(
    Type.Integer({ minimum: 0, maximum: 100_000_000_000_000, description: 'Minor units' }),
  ),
  currency: Type.Optional(
    Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217; required with amount' }),
  ),
  occurredAt: Type.Optional(Type.String({ format: 'date-time' })),
  correlationId: Type.Optional(Id),
  causationId: Type.Optional(Id),
  details: Type.Optional(Type.Object({}, { additionalProperties: true })),
};
const event = (fields: Record<string, TSchema>) =>
  Type.Object({ ...common, ...fields }, { additionalProperties: false });

/** Each type's payload: the common fields and what the type itself needs. */
export const INBOUND_SCHEMAS = {
  OrderRejected: event({
    orderId: Id,
    rejectionCode: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  }),
  OrderCancelled: event({ orderId: Id, cancelledBy: Type.Optional(Id) }),
  CollectionRejected: event({ collectionId: Id }),
  DistributionFailed: event({
    destination: Id,
    attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  }),
  ValidationError: event({
    entity: Type.Optional(Id),
    errors: Type.Array(
      Type.Object(
        { field: Id, message: Type.String({ minLength: 1, maxLength: 1000 }) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100 },
    ),
  }),
} satisfies Record<InboundType, TSchema>;

const validators = Object.fromEntries(
  INBOUND_TYPES.map((type) => [type, Compile(INBOUND_SCHEMAS[type] as TSchema)]),
) as Record<InboundType, ReturnType<typeof Compile>>;

const isInbound = (type: unknown): type is InboundType =>
  typeof type === 'string' && Object.hasOwn(INBOUND_EVENTS, type);

const field = (pointer: string, message: string): FieldError => ({ in: 'body', pointer, message });

/** The failing fields of one event: pointers into the message (`/payload/reason`, `/headers/ce-type`). */
export function inboundErrors(
  type: unknown,
  payload: unknown,
  headers: Record<string, string> = {},
): FieldError[] {
  if (!isInbound(type)) return [field('/headers/ce-type', `must be one of ${INBOUND_TYPES.join(', ')}`)];
  const errors: FieldError[] = [];
  for (const name of ['ce-correlationid', 'ce-causationid']) {
    if ((headers[name]?.length ?? 0) > 200)
      errors.push(field(`/headers/${name}`, 'must be at most 200 characters'));
  }
  const validator = validators[type];
  if (!validator.Check(payload)) {
    const issues = [...validator.Errors(payload)] as Parameters<typeof fieldErrors>[1];
    return [
      ...errors,
      ...fieldErrors('body', issues).map((e) => ({
        ...e,
        pointer: `/payload${e.pointer === '/' ? '' : e.pointer}`,
      })),
    ];
  }
  const data = payload as { transactionId: string; amount?: number; currency?: string };
  if (RESERVED_PREFIXES.some((prefix) => data.transactionId.startsWith(prefix))) {
    errors.push(
      field(
        '/payload/transactionId',
        `must not start with ${RESERVED_PREFIXES.join(' or ')} (Mercato's own failures)`,
      ),
    );
  }
  if (RESERVED_IDS.includes(data.transactionId.toLowerCase())) {
    errors.push(
      field(
        '/payload/transactionId',
        `must not be one of ${RESERVED_IDS.join(', ')} (the collector's routes)`,
      ),
    );
  }
  if (data.amount !== undefined && data.currency === undefined) {
    errors.push(field('/payload/currency', 'is required with amount'));
  }
  if (tooMuchToSearch(payload)) {
    errors.push(
      field(
        '/payload',
        `holds more text than an exception's search index takes (about ${MAX_SEARCHABLE_BYTES} bytes of distinct words and numbers, a number counted by its digits: 1e300 is 301)`,
      ),
    );
  }
  return errors;
}

/** The check given to deps.wal.acceptWrites: a bad event is refused at write time (422). */
export const checkInbound: InboundCheck = (message) =>
  inboundErrors(message.headers?.['ce-type'], message.payload, message.headers ?? {});

type InboundData = {
  transactionId: string;
  reason: string;
  externalId?: string;
  operation?: string;
  customerId?: string;
  locationCode?: string;
  orderId?: string;
  amount?: number;
  currency?: string;
  correlationId?: string;
  causationId?: string;
  [field: string]: unknown;
};

/**
 * The exception an inbound event reports. An event that fails its check (written before the
 * check existed) is not dropped: it is captured as a VALIDATION exception of its own, under the
 * message's id, naming what is wrong.
 */
export function inboundCapture(event: ReceivedEvent): CaptureInput {
  const headers: Record<string, string> = {};
  if (event.correlationid) headers['ce-correlationid'] = event.correlationid;
  if (event.causationid) headers['ce-causationid'] = event.causationid;
  const errors = inboundErrors(event.type, event.data, headers);
  if (!isInbound(event.type) || errors.length > 0) {
    const known = isInbound(event.type) ? INBOUND_EVENTS[event.type].interfaceType : 'VALIDATION';
    const first = errors[0];
    return {
      transactionId: `wal:interface-exceptions:${event.id}`,
      eventType: cutText(event.type, 200) || 'unknown',
      interfaceType: known,
      operation: 'inbound.read',
      reason: cutText(
        `inbound event ${cutText(event.type, 200)} is malformed: ${first?.pointer ?? ''} ${first?.message ?? ''}`,
        4000,
      ),
      sourceRef: { kind: 'source', interfaceType: known, externalId: null },
      preset: { category: 'VALIDATION', retryable: false },
      payload: event.data,
      seenAt: event.time,
      correlationId: event.correlationid === undefined ? null : cutText(event.correlationid, 200),
    };
  }
  const spec = INBOUND_EVENTS[event.type];
  const data = event.data as InboundData;
  const fallbackId =
    spec.externalId === undefined ? undefined : (data[spec.externalId] as string | undefined);
  const externalId = data.externalId ?? fallbackId ?? null;
  return {
    transactionId: data.transactionId,
    eventType: event.type,
    interfaceType: spec.interfaceType,
    operation: data.operation ?? spec.operation,
    reason: data.reason,
    externalId,
    customerId: data.customerId ?? null,
    locationCode: data.locationCode ?? null,
    orderId: data.orderId ?? null,
    amount: data.amount ?? null,
    currency: data.currency ?? null,
    correlationId: data.correlationId ?? event.correlationid ?? null,
    causationId: data.causationId ?? event.causationid ?? null,
    sourceRef: { kind: 'source', interfaceType: spec.interfaceType, externalId },
    payload: data,
    seenAt: event.time,
  };
}
