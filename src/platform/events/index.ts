import type { Transaction } from 'kysely';
import { isUuid } from '../uuidv7.ts';

/**
 * Domain events: what a module publishes when its resources change, as CloudEvents 1.0 through
 * the WAL's transactional outbox (the event commits with the change or not at all), and how
 * another module subscribes to them (an internal target of a system namespace: exactly once
 * through the inbox). The WAL module implements EventBus; modules receive it as an argument.
 */

/** The system namespaces every tenant has (named after the seeds' topics). */
export const SYSTEM_TOPICS = [
  'product-events',
  'inventory-events',
  'order-events',
  'payment-events',
  'notification-events',
  // The exception collector's: what the tenant's systems report (written through /wal/write),
  // and what the collector announces (captured, retried, resolved, critical alerts).
  'interface-exceptions',
  'exception-events',
] as const;
export type Topic = (typeof SYSTEM_TOPICS)[number];

/**
 * One change to announce: type `mercato.<resource>.<verb>`, subject the resource id, data the
 * resource after the change; `meta`, when the events of one publish come from different requests
 * (a batch of several callers), replaces the publish call's meta for this event.
 */
export type DomainEvent = {
  type: string;
  subject: string;
  data: unknown;
  meta?: EventMeta | undefined;
  /** Deliver this long after the commit instead of at once (a timer, such as the checkout's watchdog). */
  delayMs?: number | undefined;
  /**
   * Mercato's own message, not a domain event (a timer such as the checkout's watchdog): only
   * the modules' subscribers take it, never the tenant's targets of the namespace (its webhooks).
   */
  internal?: boolean | undefined;
  /**
   * In process only, never stored nor delivered: what the publisher knows that lets a
   * subscriber's `skips` pass the event over (`{ availableBefore: 4 }`, `{ stockPool: null }`).
   */
  hints?: Readonly<Record<string, unknown>> | undefined;
};

/** Who caused the change; becomes the extensions correlationid, causationid and traceparent. */
export type EventMeta = {
  correlationId?: string | undefined;
  causationId?: string | undefined;
  traceparent?: string | undefined;
};

/** An event as a subscriber receives it: the CloudEvent with Mercato's extensions. */
export type ReceivedEvent = {
  id: string;
  type: string;
  source: string;
  subject: string;
  time: string;
  data: unknown;
  tenantid: string;
  correlationid?: string | undefined;
  causationid?: string | undefined;
  traceparent?: string | undefined;
};

/** A module's reaction to events of a topic; runs in the transaction that records it in the inbox. */
export type Subscriber = {
  /** Unique across Mercato, e.g. `catalog.stock-levels`; the internal target's name. */
  name: string;
  topic: Topic;
  /** Type patterns, exact or ending in `.*` (`mercato.inventory.*`). */
  types: string[];
  /**
   * Optional, asked when an event of `types` is published (in the publisher's process, with its
   * `hints`): true for an event whose handling would change nothing. On the postgres events
   * backend, such an event that no other target takes is stored delivered at once: no delivery
   * round trip. Otherwise it is delivered as usual, so `handle` must still do nothing harmful
   * with it; say true only when sure. One that throws counts as false (the event is delivered).
   */
  skips?(event: DomainEvent): boolean;
  // biome-ignore lint/suspicious/noExplicitAny: the subscriber casts to its own tables
  handle(trx: Transaction<any>, event: ReceivedEvent): Promise<void>;
  /**
   * Optional, for set-oriented subscribers: the events of one delivery batch (the new ones, in
   * arrival order, already filtered by type) in one call, so a batch costs a constant number of
   * statements (the exception collector's capture). When it fails, each event runs alone again
   * (through this function, with one event), so one bad event fails only itself.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the subscriber casts to its own tables
  handleMany?(trx: Transaction<any>, events: ReceivedEvent[]): Promise<void>;
  /**
   * With handleMany, on a system namespace tenants write (`interface-exceptions`): a tenant's
   * write runs handleMany in its own transaction, so the events and their effect commit
   * together (when it fails, they are delivered as usual). See src/wal/write/inline-delivery.ts.
   */
  inline?: boolean;
};

export type EventBus = {
  /**
   * Writes the events to the tenant's system namespace `topic` in `trx`, the caller's
   * transaction of that tenant (withTenant), so they commit with the change. They are checked at
   * once and written just before the commit, every event of the transaction in one insert.
   */
  publish(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction
    trx: Transaction<any>,
    tenantId: string,
    topic: Topic,
    events: DomainEvent[],
    meta?: EventMeta,
  ): Promise<void>;
  /** Registers a subscriber; call before the WAL starts. */
  subscribe(subscriber: Subscriber): void;
};

/** Whether an event type matches one of the patterns (exact, `prefix.*`, or `*`). */
export function matchesTypes(type: string, patterns: readonly string[]): boolean {
  for (const pattern of patterns) {
    if (pattern === '*' || pattern === type) return true;
    if (pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1))) return true;
  }
  return false;
}

/**
 * handleMany for a subscriber most of whose events need nothing: `keyOf` names the id each event
 * concerns (an event naming no UUID is passed over), `found` reads in ONE statement which of
 * those ids concern the subscriber (as PostgreSQL returns uuids: lower case), and only their
 * events go to `handle`, in batch order.
 */
export async function handleFound(
  batch: ReceivedEvent[],
  keyOf: (event: ReceivedEvent) => unknown,
  found: (ids: string[]) => Promise<Set<string>>,
  handle: (event: ReceivedEvent) => Promise<void>,
): Promise<void> {
  const ids = batch.map((event) => {
    const id = keyOf(event);
    return isUuid(id) ? id.toLowerCase() : undefined;
  });
  const named = [...new Set(ids.filter((id) => id !== undefined))];
  if (named.length === 0) return;
  const hits = await found(named);
  for (const [i, event] of batch.entries()) if (hits.has(ids[i] ?? '')) await handle(event);
}
