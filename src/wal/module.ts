import type { FastifyInstance } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { EventBus, Topic } from '../platform/events/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { secretBoxOf } from '../platform/secrets.ts';
import { auditRoutes } from './audit/index.ts';
import { startRetention } from './backends/postgres/retention.ts';
import {
  createStreamBackends,
  type Relay,
  type StreamConsumer,
  startRelay,
} from './backends/stream/index.ts';
import { systemRetryPolicy } from './delivery/backoff.ts';
import {
  type CircuitBreakerOptions,
  createCircuitBreakers,
  createDeliveryEngine,
  type DeadLetterEvent,
  type DeliverFn,
  type HandlerOptions,
  type InternalHandler,
} from './delivery/index.ts';
import { createStreamDelivery } from './delivery/stream-delivery.ts';
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
import { countWrites, createWalMetrics } from './metrics.ts';
import { createNamespaceCache, disableTarget, namespaceRoutes } from './namespaces/index.ts';
import type { Namespace, Target } from './namespaces/namespace.ts';
import { capRetention } from './namespaces/retention-cap.ts';
import { resealTargets } from './namespaces/sealed-targets.ts';
import { ensureAllSystemNamespaces, ensureSystemNamespaces } from './namespaces/system-namespaces.ts';
import { createSystemTargets } from './namespaces/system-targets.ts';
import type { WalTables } from './tables.ts';
import { createTargets } from './targets/index.ts';
import type { Delivery } from './targets/target-result.ts';
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
 */
export async function createWal(
  ctx: AppContext,
  options: { circuits?: CircuitBreakerOptions } = {},
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
  // No namespace delivers more at once, nor keeps its finished messages longer, than the operator
  // allows (older rows may say more): the stream backends' retention reads these periods.
  const maxConcurrency = ctx.config.walMaxConcurrency;
  const capped = (n: Namespace): Namespace =>
    capRetention(
      n.consumerConcurrency > maxConcurrency ? { ...n, consumerConcurrency: maxConcurrency } : n,
      ctx.config.walMaxRetentionSeconds,
    );
  const deadLetterListeners: Array<(event: DeadLetterEvent) => void | Promise<void>> = [];
  /** Counts deliveries to one target that came to `outcome`, and the latency of delivered ones. */
  const count = (namespace: Namespace, target: Target, outcome: string, deliveries: Delivery[]) => {
    metrics.deliveries.inc(
      { namespace: namespace.name, target_type: target.type, outcome },
      deliveries.length,
    );
    if (outcome !== 'delivered') return;
    const now = Date.now();
    for (const { dueAt } of deliveries) {
      if (dueAt)
        metrics.deliveryLatency.observe({ namespace: namespace.name }, (now - dueAt.getTime()) / 1000);
    }
  };
  const deliver: DeliverFn = async (namespace, target, delivery, internal) => {
    const result = await targets.deliver(namespace, target, delivery, internal);
    count(namespace, target, result.outcome, [delivery]);
    // 410 Gone: the endpoint is gone for good, so the target is switched off for every message.
    if (result.outcome === 'disable') {
      const change = { tenantId: namespace.tenantId, actor: 'system:wal' };
      await withTenant(db, namespace.tenantId, (trx) =>
        disableTarget(trx, change, namespace.name, target.name, result.error),
      ).catch((err: unknown) => ctx.logger.error({ err }, 'could not disable a target'));
      namespaces.invalidate(namespace.tenantId, namespace.name);
    }
    return result;
  };
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
  let stopRetention: (() => Promise<void>) | undefined;
  let stopPruning: (() => void) | undefined;
  /**
   * HTTP secrets and credential headers a row holds in clear (written before they were sealed) or
   * under an earlier key are sealed under the current one, at every start (README: "Secrets at
   * rest"). Until then they are read as they are; a failure here only delays it to the next start.
   */
  const sealStoredTargets = async () => {
    try {
      const result = await resealTargets(db, secretBoxOf(ctx));
      if (result.resealed > 0) {
        ctx.logger.info({ namespaces: result.resealed }, 'WAL target secrets sealed under the current key');
      }
      for (const u of result.unreadable) {
        ctx.logger.warn(
          u,
          'a WAL target secret was sealed under an unknown key (MERCATO_SECRETS_KEY changed?): name the old key in MERCATO_SECRETS_KEY_PREVIOUS, or send the target again',
        );
      }
    } catch (err) {
      ctx.logger.error({ err }, 'could not seal the WAL target secrets stored in clear');
    }
  };
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
    // The postgres backend is the database itself; its tables must answer. Each stream backend
    // this process has must answer a ping.
    healthChecks: [
      {
        name: 'wal:postgres',
        check: async () => {
          await withSystem(db, (trx) => trx.selectFrom('wal.namespaces').select('name').limit(1).execute());
          return true;
        },
      },
      ...[...streams.values()].map((stream) => ({
        name: `wal:${stream.name}`,
        check: async () => {
          await stream.ping();
          return true;
        },
      })),
    ],
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
      await sealStoredTargets();
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
      for (const stream of streams.values()) {
        consumers.push(
          await stream.consume({
            logger: ctx.logger,
            leaseMs,
            namespaces: async () =>
              (await namespaces.all())
                .filter((n) => n.backend === stream.name || n.fallbackBackend === stream.name)
                .map(capped),
            onNamespacesChanged: (listener) => namespaces.onChange(listener),
            deliver: createStreamDelivery(
              {
                db,
                deliver,
                internal: engine.dispatchInternal,
                logger: ctx.logger,
                onDeadLetter,
                circuits,
                systemRetry,
              },
              stream.name,
            ),
          }),
        );
      }
      relay = startRelay({ ctx, db, streams });
    },
    async stop() {
      stopPruning?.();
      await stopRetention?.();
      await relay?.stop();
      await Promise.all(consumers.splice(0).map((consumer) => consumer.stop()));
      await Promise.all([...streams.values()].map((stream) => stream.close()));
      await engine.stop();
      await namespaces.stop();
      await targets.close();
    },
  };
}
