import type { Kysely } from 'kysely';
import type { AppContext } from '../../platform/index.ts';
import {
  type CycleResult,
  extendLeases,
  type LeasedMessage,
  nextWakeInMs,
  recordAndLease,
} from '../backends/postgres/queue.ts';
import type { Namespace, RetryPolicy } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import { SYSTEM_RETRY_POLICY } from './backoff.ts';
import type { CircuitBreakers } from './circuit-breakers.ts';
import { type DeadLetterEvent, publishDeadLetters } from './dead-letter-events.ts';
import { deliverMessage, type MessageDeliveryDeps, type Outcome } from './deliver-message.ts';
import { createHeldMessages } from './held-messages.ts';
import {
  createInternalHandlers,
  type HandlerOptions,
  type InlineRun,
  type InternalDispatch,
  type InternalHandler,
} from './internal-handlers.ts';
import { leaseWindows } from './lease-windows.ts';
import { createNamespaceSlots, namespaceKey } from './namespace-slots.ts';
import { MAX_TIMER_MS, readyHints } from './ready-hints.ts';
import type { DeliverFn } from './run-targets.ts';

export type DeliveryEngineDeps = {
  ctx: AppContext;
  db: Kysely<WalTables>;
  loadNamespace: (tenantId: string, name: string) => Promise<Namespace | undefined>;
  /** Delivers to one target; `targets.deliver` of src/wal/targets fits. */
  deliver: DeliverFn;
  onDeadLetter?: (event: DeadLetterEvent) => void | Promise<void>;
  /** How long a consumer holds a leased message before another may take it. (Default: 30000) */
  leaseMs?: number;
  /** Leased messages held at most at once, all namespaces together (in flight, waiting for a slot or to be recorded). (Default: 512) */
  batchSize?: number;
  /** Deliveries in flight per namespace at most, whatever its consumerConcurrency. (Default: config.walMaxConcurrency) */
  maxConcurrency?: number;
  /** What one tenant's namespaces may hold together. (Default: max(maxConcurrency, batchSize / 4)) */
  tenantShare?: number;
  /** The breakers of HTTP targets; without them every delivery is attempted. */
  circuits?: CircuitBreakers;
  /** How Mercato's own targets on system namespaces are retried (MERCATO_WAL_SYSTEM_RETRY_*). (Default: SYSTEM_RETRY_POLICY) */
  systemRetry?: Readonly<RetryPolicy>;
  /** A slow safety poll, for notifications lost while reconnecting. (Default: 5000) */
  safetyPollMs?: number;
};

export type DeliveryEngine = {
  registerHandler(name: string, handler: InternalHandler, options?: HandlerOptions): void;
  dispatchInternal: InternalDispatch;
  /** Handlers registered with `inline`, run in a writer's transaction (src/wal/write/inline-delivery.ts). */
  inline: { runs(handler: string): boolean; run: InlineRun };
  start(): Promise<void>;
  /** Stops leasing and waits for the deliveries in flight. */
  stop(): Promise<void>;
  /** Look for due messages now. */
  wake(): void;
};

/**
 * The postgres backend's consumer: wakes on NOTIFY mercato_wal_ready and on a timer armed to the
 * next due time, and keeps up to `batchSize` leased messages in flight, delivering each to every
 * enabled target it has not reached yet (at most `consumerConcurrency`, capped at `maxConcurrency`,
 * at once per namespace). One loop records the outcomes gathered since its last statement and
 * leases as many messages as slots are free, in one fenced statement per cycle (recordAndLease): a
 * slow message holds only its own slot, never the next lease. Fair: each namespace holds at most
 * PREFETCH × its concurrency and each tenant at most `tenantShare` (see LeaseWindows), so a slow
 * namespace never takes the slots another namespace or tenant needs.
 *
 * @example
 * const engine = createDeliveryEngine({ ctx, db, loadNamespace: cache.get, deliver: targets.deliver });
 * engine.registerHandler('orders.paid', async (trx, delivery) => { ... });
 * await engine.start();
 */
export function createDeliveryEngine(deps: DeliveryEngineDeps): DeliveryEngine {
  const { ctx, db } = deps;
  const leaseMs = deps.leaseMs ?? 30_000;
  const batchSize = deps.batchSize ?? 512;
  const maxConcurrency = Math.max(1, deps.maxConcurrency ?? ctx.config.walMaxConcurrency ?? 64);
  const tenantShare = Math.min(
    batchSize,
    deps.tenantShare ?? Math.max(maxConcurrency, Math.floor(batchSize / 4)),
  );
  const safetyPollMs = deps.safetyPollMs ?? 5_000;
  const systemRetry = deps.systemRetry ?? SYSTEM_RETRY_POLICY;
  const log = ctx.logger.child({ component: 'wal-delivery' });
  const handlers = createInternalHandlers(db, log);
  const delivering: MessageDeliveryDeps = {
    deliver: deps.deliver,
    internal: handlers.dispatch,
    log,
    circuits: deps.circuits,
    systemRetry,
  };
  const hints = readyHints(wake);

  let running = false;
  /** A wake came (NOTIFY, timer, poll) since the last lease looked. */
  let again = false;
  let looping: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let safety: NodeJS.Timeout | undefined;
  let keeper: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  const held = createHeldMessages();
  const slots = createNamespaceSlots();
  /** Resolves the loop's wait for an outcome or a wake. */
  let signal: (() => void) | undefined;

  function poke(): void {
    const resolve = signal;
    signal = undefined;
    resolve?.();
  }

  /** Renews, every third of a lease, the leases of the held messages still being delivered. */
  function keepLeases(): void {
    const open = held.open();
    extendLeases(db, open, leaseMs).catch((err: unknown) => log.warn({ err }, 'could not extend leases'));
  }

  /** Runs one message under its namespace's concurrency limit; its outcome goes to the next cycle. */
  async function run(namespace: Namespace | undefined, message: LeasedMessage): Promise<void> {
    const limit = Math.max(1, Math.min(maxConcurrency, namespace?.consumerConcurrency ?? 1));
    let outcome: Outcome;
    try {
      outcome = await slots.run(namespaceKey(message), limit, () =>
        deliverMessage(delivering, namespace, message),
      );
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const base = { id: message.id, leaseToken: message.leaseToken, targetsDone: message.targetsDone };
      outcome = { fail: { ...base, error: text } };
    }
    held.finish(message.id, outcome);
    poke();
  }

  /** Starts the deliveries of a leased batch (one namespace lookup per namespace in it). */
  function dispatch(batch: LeasedMessage[]): void {
    const byNamespace = new Map<string, LeasedMessage[]>();
    for (const message of batch) {
      held.hold(message);
      const key = namespaceKey(message);
      const list = byNamespace.get(key);
      if (list) list.push(message);
      else byNamespace.set(key, [message]);
    }
    for (const messages of byNamespace.values()) {
      const first = messages[0] as LeasedMessage;
      deps.loadNamespace(first.tenantId, first.namespace).then(
        (namespace) => {
          for (const message of messages) void run(namespace, message);
        },
        (error: unknown) => {
          // Left unrecorded: their leases expire and they are delivered again.
          log.error({ err: error, namespace: first.namespace }, 'could not load the namespace');
          for (const message of messages) held.drop(message.id);
          poke();
        },
      );
    }
  }

  async function armTimer(since: Date | undefined): Promise<void> {
    const ms = await nextWakeInMs(db, since);
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (ms === undefined || !running) return;
    timer = setTimeout(wake, Math.min(MAX_TIMER_MS, Math.max(5, Math.ceil(ms) + 5)));
    timer.unref();
  }

  /**
   * One cycle: records the outcomes gathered so far and, when `lease`, leases the free slots.
   * Answers whether the queue may hold more for us right now (`more`) and, when the lease came
   * back short, the database time it looked at (for the due-time timer).
   */
  async function cycle(lease: boolean): Promise<{ more: boolean; short?: Date }> {
    const recording = held.takeOutcomes();
    const limit = lease ? Math.max(0, batchSize - held.size + recording.length) : 0;
    if (recording.length === 0 && limit === 0) return { more: false };
    again = false;
    const completions = recording.flatMap((o) => ('complete' in o ? [o.complete] : []));
    const failures = recording.flatMap((o) => ('fail' in o ? [o.fail] : []));
    // A recorded message of an ordering key may free the next one, which this lease cannot see yet.
    const keyed = recording.some((o) => held.get('complete' in o ? o.complete.id : o.fail.id)?.orderingKey);
    let result: CycleResult;
    try {
      const windows = leaseWindows(held.values(), recording, maxConcurrency, tenantShare);
      result = await recordAndLease(db, { completions, failures, limit, leaseMs, windows });
    } catch (error) {
      log.error({ err: error }, 'delivery cycle failed');
      // The outcomes are lost: their leases expire and the messages are delivered again.
      return { more: false };
    } finally {
      held.forget(recording);
    }
    const stale = [...result.completed.stale, ...result.failed.stale];
    if (stale.length > 0)
      log.warn({ messages: stale }, 'lease expired before the outcome was recorded; left to the newer lease');
    if (result.messages.length > 0) dispatch(result.messages);
    await publishDeadLetters(result.failed.updated, log, deps.onDeadLetter);
    const full = limit > 0 && result.messages.length === limit;
    // Messages set aside behind their key: the next lease reads past them at once.
    const more = keyed || result.parked > 0;
    return limit > 0 && !full ? { more, short: result.at } : { more: full || more };
  }

  async function loop(): Promise<void> {
    let more = true;
    let since: Date | undefined;
    let unarmed = false;
    for (;;) {
      const lease = running && (more || again || held.outcomes > 0);
      if (held.outcomes > 0 || (lease && held.size < batchSize)) {
        const result = await cycle(lease);
        more = result.more;
        if (result.short) {
          since = result.short;
          unarmed = true;
        }
        continue;
      }
      if (unarmed && running) {
        // The queue looked drained: wake at the next due time (or lease expiry) after it.
        unarmed = false;
        try {
          await armTimer(since);
        } catch (error) {
          log.error({ err: error }, 'could not arm the due-time timer');
        }
        continue;
      }
      if (held.size === 0 && !(running && again)) return;
      // Wait for an outcome or a wake (the deliveries in flight poke us), then a turn of the event
      // loop, so the outcomes of deliveries finishing together are recorded in one cycle.
      await new Promise<void>((resolve) => {
        signal = resolve;
      });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  function wake(): void {
    if (!running) return;
    again = true;
    if (looping) poke();
    else looping = loop().finally(() => (looping = undefined));
  }

  return {
    registerHandler: handlers.register,
    dispatchInternal: handlers.dispatch,
    inline: { runs: handlers.runsInline, run: handlers.runInline },
    wake,
    async start() {
      if (running) return;
      running = true;
      unlisten = await ctx.db.listen('mercato_wal_ready', hints.onNotify, wake);
      safety = setInterval(wake, safetyPollMs);
      safety.unref();
      keeper = setInterval(keepLeases, Math.max(100, Math.floor(leaseMs / 3)));
      keeper.unref();
      wake();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      hints.stop();
      if (safety) clearInterval(safety);
      timer = undefined;
      safety = undefined;
      await unlisten?.();
      unlisten = undefined;
      poke();
      await looping;
      if (keeper) clearInterval(keeper);
      keeper = undefined;
    },
  };
}
