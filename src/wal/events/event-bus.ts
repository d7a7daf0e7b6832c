import type { Transaction } from 'kysely';
import { commitQueue } from '../../platform/db/index.ts';
import {
  type DomainEvent,
  type EventBus,
  type EventMeta,
  matchesTypes,
  type ReceivedEvent,
  type Subscriber,
  type Topic,
} from '../../platform/events/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import {
  freshRowsStatement,
  insertFreshRows,
  type NewMessageRow,
} from '../backends/postgres/group-commit.ts';
import type { HandlerOptions, InternalHandler } from '../delivery/index.ts';
import { NAME_PATTERN, SUBSCRIBER_HANDLER_PREFIX } from '../namespaces/check-target.ts';
import type { Namespace, NamespaceCache } from '../namespaces/namespace.ts';
import { getNamespace } from '../namespaces/store.ts';
import { ensureSystemNamespaces, isSystemTopic } from '../namespaces/system-namespaces.ts';
import type { SystemTargets } from '../namespaces/system-targets.ts';
import { MAX_TYPE_PATTERNS, TYPE_PATTERN } from '../namespaces/type-patterns.ts';
import type { BackendName, WalTables } from '../tables.ts';
import {
  CE_HEADERS,
  eventExtensions,
  INTERNAL_HEADER,
  messageSource,
  messageType,
} from '../targets/cloud-event.ts';
import type { Delivery } from '../targets/target-result.ts';
import type { MessageInput } from '../write/index.ts';
import { outboxRows } from '../write/outbox.ts';

export type EventBusDeps = {
  /** MERCATO_EVENTS_BACKEND: where a system namespace found missing is created. */
  backend: BackendName;
  systemTargets: SystemTargets;
  /** The namespace cache (its entries read without a round trip; a namespace read here is offered to it). */
  namespaces?: Pick<NamespaceCache, 'peek' | 'mark' | 'remember'>;
  registerHandler(name: string, handler: InternalHandler, options?: HandlerOptions): void;
  /** True once the WAL has started: subscribing then is a programming error. */
  started(): boolean;
};

const NAME = new RegExp(NAME_PATTERN);
/** An event's own type: a pattern without wildcard. */
const EVENT_TYPE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;

/** A delivery of a system namespace as a subscriber receives it. */
export function toReceivedEvent(delivery: Delivery): ReceivedEvent {
  const { subject, ...extensions } = eventExtensions(delivery.headers);
  return {
    id: delivery.messageId,
    type: messageType(delivery),
    source: messageSource(delivery),
    subject: subject ?? delivery.key ?? '',
    time: delivery.createdAt.toISOString(),
    data: delivery.payload,
    tenantid: delivery.tenantId,
    ...extensions,
  };
}

/** The outbox message of one domain event: a new UUIDv7 event id, ordered per subject. */
function toMessage(topic: Topic, event: DomainEvent, meta: EventMeta | undefined): MessageInput {
  if (!EVENT_TYPE.test(event.type) || event.type.length > 200) {
    throw new Error(`event type ${JSON.stringify(event.type)} must be like mercato.<resource>.<verb>`);
  }
  if (typeof event.subject !== 'string' || event.subject === '' || event.subject.length > 200) {
    throw new Error(`event ${event.type} needs a subject (the resource id) of 1 to 200 characters`);
  }
  const headers: Record<string, string> = {
    [CE_HEADERS.type]: event.type,
    [CE_HEADERS.source]: `/mercato/${topic}`,
    [CE_HEADERS.subject]: event.subject,
  };
  if (meta?.correlationId) headers[CE_HEADERS.correlationid] = meta.correlationId;
  if (meta?.causationId) headers[CE_HEADERS.causationid] = meta.causationId;
  if (meta?.traceparent) headers[CE_HEADERS.traceparent] = meta.traceparent;
  if (event.internal) headers[INTERNAL_HEADER] = 'true';
  const message: MessageInput = {
    messageId: uuidv7(),
    key: event.subject,
    payload: event.data ?? null,
    headers,
  };
  if (event.delayMs !== undefined && event.delayMs > 0)
    message.lifecycle = { delay: Math.round(event.delayMs) };
  return message;
}

/**
 * The EventBus on the WAL. publish writes through the transactional outbox into the tenant's
 * system namespace in the caller's transaction (read there too: no second connection, which on
 * PGlite would wait for the caller's). subscribe registers an internal handler (exactly once
 * through the inbox) and declares the internal target that carries it on every tenant's
 * namespace of the topic.
 */
export function createEventBus(deps: EventBusDeps): EventBus {
  // Who owns this bus's queue of a withTenant transaction's events (one insert before its commit).
  const outbox = {};
  // The subscribers that may pass an event over, by their internal target's name.
  const skipping = new Map<string, (event: DomainEvent) => boolean>();

  async function systemNamespace(
    trx: Transaction<WalTables>,
    tenantId: string,
    topic: Topic,
  ): Promise<Namespace> {
    // The delivery engine keeps the namespaces it serves cached (dropped on change, NOTIFY): a
    // hit saves a round trip inside the caller's transaction, often one holding row locks.
    const cached = deps.namespaces?.peek(tenantId, topic);
    if (cached?.system) return cached;
    const mark = deps.namespaces?.mark();
    let namespace = await getNamespace(trx, tenantId, topic);
    const found = namespace !== undefined;
    if (!namespace) {
      // A tenant made without the WAL's hook (another process, the CLI) since this one started.
      await ensureSystemNamespaces(trx, tenantId, deps.backend);
      namespace = await getNamespace(trx, tenantId, topic);
    }
    if (!namespace?.system) throw new Error(`the system namespace ${topic} of tenant ${tenantId} is missing`);
    // Kept for the next publish unless a change was heard meanwhile (this read may predate it),
    // and only when it was there before this transaction (a row made in it may yet roll back).
    if (found && mark !== undefined) deps.namespaces?.remember(mark, tenantId, topic, namespace);
    return deps.systemTargets.apply(namespace);
  }

  return {
    async publish(trx, tenantId, topic, events, meta) {
      if (!isSystemTopic(topic)) throw new Error(`${String(topic)} is not a system topic`);
      if (events.length === 0) return;
      const messages = events.map((event) => toMessage(topic, event, event.meta ?? meta));
      const walTrx = trx as Transaction<WalTables>;
      const namespace = await systemNamespace(walTrx, tenantId, topic);
      const rows = outboxRows(tenantId, namespace, messages, true, (index, target) => {
        const skips = target.type === 'internal' && target.system ? skipping.get(target.name) : undefined;
        if (!skips) return false;
        try {
          return skips(events[index]!);
        } catch {
          return false; // unsure: delivered, never the publisher's transaction failed for it
        }
      });
      // Fresh ids (toMessage's UUIDv7s): a plain insert, no conflict to look for.
      const queue = commitQueue<NewMessageRow>(trx, outbox, (all) => freshRowsStatement(walTrx, all));
      if (queue) queue.push(...rows);
      else await insertFreshRows(walTrx, rows);
    },
    subscribe(subscriber: Subscriber) {
      const { name, topic, types } = subscriber;
      if (deps.started()) throw new Error(`subscriber ${name}: subscribe before the WAL starts`);
      if (!isSystemTopic(topic))
        throw new Error(`subscriber ${name}: ${String(topic)} is not a system topic`);
      if (!NAME.test(name))
        throw new Error(`subscriber name ${JSON.stringify(name)} must match ${NAME_PATTERN}`);
      if (
        types.length === 0 ||
        types.length > MAX_TYPE_PATTERNS ||
        !types.every((t) => TYPE_PATTERN.test(t))
      ) {
        throw new Error(
          `subscriber ${name}: types must be 1 to ${MAX_TYPE_PATTERNS} patterns like mercato.product.*`,
        );
      }
      const handler = `${SUBSCRIBER_HANDLER_PREFIX}${name}`;
      const patterns = [...types];
      deps.systemTargets.declare(topic, { type: 'internal', name, enabled: true, handler, types: patterns });
      if (subscriber.skips) skipping.set(name, subscriber.skips.bind(subscriber));
      // Only the topic's system namespace feeds a subscriber: a target naming its handler on
      // another namespace (stored before such targets were refused) carries a tenant's message.
      // The target's filter already skipped other types; a redelivery of an older message too.
      const received = (delivery: Delivery): ReceivedEvent | undefined => {
        if (delivery.namespace !== topic) return undefined;
        const event = toReceivedEvent(delivery);
        return matchesTypes(event.type, patterns) ? event : undefined;
      };
      const handleMany = subscriber.handleMany?.bind(subscriber);
      deps.registerHandler(
        handler,
        async (trx, delivery) => {
          const event = received(delivery);
          if (event) await subscriber.handle(trx, event);
        },
        handleMany
          ? {
              // A set-oriented subscriber takes the new events of a delivery batch in one call.
              many: async (trx, deliveries) => {
                const events = deliveries.map(received).filter((e) => e !== undefined);
                if (events.length > 0) await handleMany(trx, events);
              },
              inline: subscriber.inline === true,
            }
          : undefined,
      );
    },
  };
}
