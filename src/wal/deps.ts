import type { Kysely } from 'kysely';
import type { FieldError } from '../platform/http/index.ts';
import type { AppContext } from '../platform/index.ts';
import type { CircuitBreakers } from './delivery/circuit-breakers.ts';
import type { NamespaceCache } from './namespaces/namespace.ts';
import type { SystemTargets } from './namespaces/system-targets.ts';
import type { WalTables } from './tables.ts';
import type { StreamBackends } from './write/append.ts';
import type { InlineDelivery } from './write/inline-delivery.ts';
import type { MessageInput } from './write/prepare.ts';

/**
 * The check of a system namespace tenants may write (`interface-exceptions`): the failing fields of
 * one message, pointers relative to the message (`/payload/reason`, `/headers/ce-type`).
 */
export type InboundCheck = (message: MessageInput) => FieldError[];

/** What every part of the WAL module receives. */
export type WalDeps = {
  ctx: AppContext;
  db: Kysely<WalTables>;
  namespaces: NamespaceCache;
  /** The stream backends this process has (REDIS_URL, NATS_URL); postgres is always there. */
  streams: StreamBackends;
  /** The process's circuit breakers per HTTP target (shown on GET namespace). */
  circuits?: CircuitBreakers;
  /** The internal targets modules declare on system namespaces (EventBus subscribers). */
  systemTargets?: SystemTargets;
  /** System namespaces tenants may write, by name, with the check of each message (WalModule.acceptWrites). */
  inbound?: Map<string, InboundCheck>;
  /** Handlers a tenant's write delivers to in its own transaction (write/inline-delivery.ts). */
  inline?: InlineDelivery;
};
