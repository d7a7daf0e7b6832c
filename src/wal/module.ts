import type { FastifyInstance } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { withSystem } from '../platform/db/index.ts';
import type { EventBus, Topic } from '../platform/events/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { auditRoutes } from './audit/index.ts';
import { startRetention } from './backends/postgres/retention.ts';
import {
  createStreamBackends,
  type DrainPruner,
  type Relay,
  type StreamConsumer,
  startDrainPruner,
  startRelay,
} from './backends/stream/index.ts';
import { createCountedDelivery } from './counted-delivery.ts';
import { systemRetryPolicy } from './delivery/backoff.ts';
import {
  type CircuitBreakerOptions,
  createCircuitBreakers,
  createDeliveryEngine,
  type DeadLetterEvent,
  type HandlerOptions,
  type InternalHandler,
} from './delivery/index.ts';
import type { InboundCheck, WalDeps } from './deps.ts';
import {
  type DeadLetterCursor,
  dlqRoutes,
  getDeadLetter,
  listDeadSince,
  requeueDeadLetters,
  type TenantDeadLetter,
} from './dlq/index.ts';
import { readMessageState, type WalMessageState } from './dlq/message-state.ts';
import { createEventBus } from './events/event-bus.ts';
import { walHealthChecks } from './health-checks.ts';
import { countWrites, createWalMetrics } from './metrics.ts';
import { createNamespaceCache, namespaceRoutes } from './namespaces/index.ts';
import type { Namespace } from './namespaces/namespace.ts';
import { ensureAllSystemNamespaces, ensureSystemNamespaces } from './namespaces/system-namespaces.ts';
import { createSystemTargets } from './namespaces/system-targets.ts';
import { sealStoredTargets } from './seal-stored-targets.ts';
import { startStreamConsumers } from './stream-consumers.ts';
import type { WalTables } from './tables.ts';
import { createTargets } from './targets/index.ts';
import { type MessageInput, type OutboxReceipt, writeMessages, writeRoutes } from './write/index.ts';

export type WalModule = MercatoModule & {
  deps: WalDeps;
  /** Registers an internal target handler; it runs in a transaction with the inbox record. */
  registerHandler(name: string, handler: InternalHandler, options?: HandlerOptions): void;
  /** The transactional outbox: writes messages in the caller's transaction. */
  write(
    trx: Transaction<WalTables>,
    tenantId: string,
    namespace: Namespace,
    messages: MessageInput[],
  ): Promise<OutboxReceipt[]>;
  /** Listens for `wal.message.dead-lettered` events (the exception collector does). */
  onDeadLetter(listener: (event: DeadLetterEvent) => void | Promise<void>): void;
  /**
   * Lets tenants write a system namespace through /wal/write (`interface-exceptions`: their
   * systems report failures), each message checked first (422 with the failing fields).
   */
  acceptWrites(topic: Topic, check: InboundCheck): void;
  /** Dead letters of any backend, read and requeued in the caller's transaction of the tenant. */
  deadLetters: {
    get(
      // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
      trx: Transaction<any>,
      tenantId: string,
      namespace: string,
      messageId: string,
    ): ReturnType<typeof getDeadLetter>;
    /** Puts one back in the queue; false when it is no longer a dead letter. */
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    requeue(trx: Transaction<any>, tenantId: string, namespace: string, messageId: string): Promise<boolean>;
    /**
     * Dead letters of every tenant dead at or after `since`, oldest first, a page of `limit`
     * after `after` (in a system transaction of its own): for a sweep of deaths a listener missed.
     */
    since(since: Date, limit: number, after?: DeadLetterCursor): Promise<TenantDeadLetter[]>;
    /**
     * Where one message stands now (wal.messages, else its stream backend), dead or not; undefined
     * when gone. Outside any transaction: a requeue's outcome (delivered, or dead again).
     */
    state(tenantId: string, namespace: string, messageId: string): Promise<WalMessageState | undefined>;
  };
  /** Domain events: publish through the outbox into system namespaces, subscribe with internal targets. */
  events: EventBus;
  /**
   * Creates the tenant's system namespaces in its creation transaction (`trx`: the tenant's, or
   * the system's): identity's createTenant runs it through IdentityDeps.onTenantCreated.
   */
  // biome-ignore lint/suspicious/noExplicitAny: identity's transaction
  onTenantCreated(trx: Transaction<any>, tenantId: string): Promise<void>;
};

/**
 * The WAL service: namespaces, writes, delivery to targets with retries, dead letters, audit.
 * `options.circuits`: the HTTP targets' breakers (threshold, half-open pause; tests shorten them).
 * `options.drainPruneMs`: how often draining backends are looked at for pruning (default 30 s;
 * tests shorten it).
 */
export async function createWal(
  ctx: AppContext,
  options: { circuits?: CircuitBreakerOptions; drainPruneMs?: number } = {},
): Promise<WalModule> {
  const db = ctx.db.kysely as Kysely<WalTables>;
  const systemTargets = createSystemTargets();
  const namespaces = createNamespaceCache(ctx, db, systemTargets);
  const streams = createStreamBackends(ctx);
  const logger = ctx.logger.child({ component: 'wal-circuits' });
  const circuits = createCircuitBreakers({ ...options.circuits, logger });
  const inbound = new Map<string, InboundCheck>();
  const deps: WalDeps = { ctx, db, namespaces, streams, circuits, systemTargets, inbound };
  const targets = createTargets({ ctx, db });
  const metrics = createWalMetrics(ctx.metrics.registry, db, streams, circuits);
  const maxConcurrency = ctx.config.walMaxConcurrency;
  const deadLetterListeners: Array<(event: DeadLetterEvent) => void | Promise<void>> = [];
  const { deliver, count } = createCountedDelivery({ ctx, db, namespaces, targets, metrics });
  const onDeadLetter = async (event: DeadLetterEvent) => {
    for (const listener of deadLetterListeners) await listener(event);
  };
  const leaseMs = ctx.config.walLeaseSeconds * 1000;
  // Mercato's own deliveries on system namespaces follow the operator's policy, never the tenant's.
  const systemRetry = systemRetryPolicy(ctx.config.walSystemRetry);
  const engine = createDeliveryEngine({
    ctx,
    db,
    loadNamespace: (tenantId, name) => namespaces.get(tenantId, name),
    leaseMs,
    deliver,
    onDeadLetter,
    maxConcurrency,
    circuits,
    systemRetry,
  });
  // Counted as the engine counts its own deliveries.
  deps.inline = {
    ...engine.inline,
    onDelivered: (namespace, target, deliveries) => count(namespace, target, 'delivered', deliveries),
  };
  let started = false;
  const events = createEventBus({
    backend: ctx.config.eventsBackend,
    systemTargets,
    namespaces,
    registerHandler: engine.registerHandler,
    started: () => started,
  });
  const consumers: StreamConsumer[] = [];
  let relay: Relay | undefined;
  let drainPruner: DrainPruner | undefined;
  let stopRetention: (() => Promise<void>) | undefined;
  let stopPruning: (() => void) | undefined;
  return {
    name: 'wal',
    deps,
    registerHandler: engine.registerHandler,
    write: (trx, tenantId, namespace, messages) => writeMessages(trx, tenantId, namespace, messages),
    onDeadLetter: (listener) => {
      deadLetterListeners.push(listener);
    },
    acceptWrites: (topic, check) => {
      inbound.set(topic, check);
    },
    deadLetters: {
      get: (trx, tenantId, namespace, messageId) => getDeadLetter(trx, tenantId, namespace, messageId),
      requeue: async (trx, tenantId, namespace, messageId) =>
        (await requeueDeadLetters(trx, tenantId, namespace, { messageId })) > 0,
      since: (since, limit, after) => withSystem(db, (trx) => listDeadSince(trx, since, limit, after)),
      state: (tenantId, namespace, messageId) => readMessageState(deps, tenantId, namespace, messageId),
    },
    events,
    onTenantCreated: (trx, tenantId) => ensureSystemNamespaces(trx, tenantId, ctx.config.eventsBackend),
    healthChecks: walHealthChecks(db, streams),
    async routes(app: FastifyInstance) {
      await app.register(namespaceRoutes(deps));
      await app.register(auditRoutes(deps));
      await app.register(async (scope) => {
        countWrites(scope, metrics);
        await scope.register(writeRoutes(deps));
      });
      await app.register(dlqRoutes(deps));
    },
    async start() {
      started = true;
      // Every tenant has its system namespaces, on MERCATO_EVENTS_BACKEND, whoever created it.
      const eventsBackend = ctx.config.eventsBackend;
      if (eventsBackend !== 'postgres' && !streams.has(eventsBackend)) {
        ctx.logger.warn(
          { backend: eventsBackend },
          'MERCATO_EVENTS_BACKEND names a backend this process has no URL for (REDIS_URL, NATS_URL): domain events wait in PostgreSQL until a process that has it relays them',
        );
      }
      await ensureAllSystemNamespaces(db, eventsBackend);
      await sealStoredTargets(ctx, db);
      await namespaces.start();
      stopRetention = startRetention({ ctx, db });
      // Breakers of targets removed, disabled or moved are dropped (and leave the metrics).
      stopPruning = namespaces.onChange(() => {
        namespaces
          .all()
          .then(circuits.retain, (err: unknown) =>
            ctx.logger.debug({ err }, 'could not prune circuit breakers'),
          );
      });
      // MERCATO_WAL_DELIVERY=false: this process takes writes; others deliver and relay.
      if (!ctx.config.walDelivery) {
        ctx.logger.info(
          'WAL delivery is off in this process (MERCATO_WAL_DELIVERY=false): it takes writes only',
        );
        return;
      }
      await engine.start();
      await startStreamConsumers(
        {
          ctx,
          db,
          streams,
          namespaces,
          leaseMs,
          deliver,
          internal: engine.dispatchInternal,
          onDeadLetter,
          circuits,
          systemRetry,
        },
        consumers,
      );
      relay = startRelay({ ctx, db, streams });
      // A backend a namespace moved off leaves its draining backends once it holds nothing more of it.
      drainPruner = startDrainPruner({ ctx, db, streams, intervalMs: options.drainPruneMs });
    },
    async stop() {
      stopPruning?.();
      await stopRetention?.();
      await drainPruner?.stop();
      await relay?.stop();
      await Promise.all(consumers.splice(0).map((consumer) => consumer.stop()));
      await Promise.all([...streams.values()].map((stream) => stream.close()));
      await engine.stop();
      await namespaces.stop();
      await targets.close();
    },
  };
}
