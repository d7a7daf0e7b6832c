import { matchesTypes } from '../../platform/events/index.ts';
import type { Target } from '../namespaces/namespace.ts';
import type { Delivery } from './target-result.ts';

/** A structured-mode CloudEvents 1.0 JSON event, with Mercato's WAL extensions. */
export type WalCloudEvent = {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  /** The resource the event is about (a domain event's resource id); header `ce-subject`. */
  subject?: string;
  time: string;
  datacontenttype: 'application/json';
  data: unknown;
  tenantid: string;
  deliveryid: string;
  attempt: number;
  /** Extensions, when the message carries them (headers `ce-correlationid`, `ce-causationid`, `traceparent`). */
  correlationid?: string;
  causationid?: string;
  traceparent?: string;
};

/** The message headers that carry CloudEvent attributes (the EventBus writes them). */
export const CE_HEADERS = {
  type: 'ce-type',
  source: 'ce-source',
  subject: 'ce-subject',
  correlationid: 'ce-correlationid',
  causationid: 'ce-causationid',
  traceparent: 'traceparent',
} as const;

/**
 * A message's event type: its `ce-type` header, else its `type` header, else
 * `mercato.wal.<namespace>`. The CloudEvent's type and what targets' `types` filters match.
 */
export function messageType(delivery: Pick<Delivery, 'headers' | 'namespace'>): string {
  return delivery.headers['ce-type'] ?? delivery.headers['type'] ?? `mercato.wal.${delivery.namespace}`;
}

/**
 * The header of a message Mercato's modules write for themselves on a system namespace (a timer:
 * the checkout's watchdog, a refund's recheck; DomainEvent.internal): only the modules' declared
 * targets take it. The tenant's own targets there (webhooks) take domain events, not Mercato's
 * timers: before, every checkout's watchdog reached a webhook of `order-events` taking all types,
 * whose answer (a 400, a Retry-After) then weighed on the watchdog's own delivery.
 */
export const INTERNAL_HEADER = 'mercato-internal';

/**
 * Whether `target` takes the message: not one of Mercato's internal ones unless the target is a
 * module's (`system`), and its type (`type`, when already known) matches the target's `types`.
 */
export function takesMessage(
  target: Pick<Target, 'types' | 'system'>,
  message: Pick<Delivery, 'headers' | 'namespace'>,
  type?: string,
): boolean {
  if (target.system !== true && message.headers[INTERNAL_HEADER] !== undefined) return false;
  return !target.types || matchesTypes(type ?? messageType(message), target.types);
}

/** The CloudEvent source: the `ce-source` header, else `/mercato/wal/<namespace>`. */
export function messageSource(delivery: Pick<Delivery, 'headers' | 'namespace'>): string {
  return delivery.headers[CE_HEADERS.source] ?? `/mercato/wal/${delivery.namespace}`;
}

/** The optional attributes and extensions the message's headers carry. */
export function eventExtensions(headers: Record<string, string>): {
  subject?: string;
  correlationid?: string;
  causationid?: string;
  traceparent?: string;
} {
  const out: Record<string, string> = {};
  for (const name of ['subject', 'correlationid', 'causationid', 'traceparent'] as const) {
    const value = headers[CE_HEADERS[name]];
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

/** The CloudEvent an HTTP target POSTs for one delivery; `ce-type` or `type` headers set the type. */
export function toCloudEvent(delivery: Delivery): WalCloudEvent {
  const { subject, ...extensions } = eventExtensions(delivery.headers);
  return {
    specversion: '1.0',
    id: delivery.messageId,
    source: messageSource(delivery),
    type: messageType(delivery),
    ...(subject !== undefined ? { subject } : {}),
    time: delivery.createdAt.toISOString(),
    datacontenttype: 'application/json',
    data: delivery.payload,
    tenantid: delivery.tenantId,
    deliveryid: delivery.deliveryId,
    attempt: delivery.attempt,
    ...extensions,
  };
}
