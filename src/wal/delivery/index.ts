import type { Kysely } from 'kysely';
import type { AppContext } from '../../platform/index.ts';
import {
  type Completion,
  type CycleResult,
  extendLeases,
  type FailedMessage,
  type Failure,
  type LeasedMessage,
  type LeaseWindows,
  nextWakeInMs,
  recordAndLease,
} from '../backends/postgres/queue.ts';
import type { Namespace, RetryPolicy } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import type { Delivery } from '../targets/target-result.ts';
import { retryPlan, SYSTEM_RETRY_POLICY } from './backoff.ts';
import type { CircuitBreakers } from './circuit-breakers.ts';
import {
  createInternalHandlers,
  type HandlerOptions,
  type InlineRun,
  type InternalDispatch,
  type InternalHandler,
} from './internal-handlers.ts';
import { MAX_TIMER_MS, readyHints } from './ready-hints.ts';
import { type DeliverFn, runTargets } from './run-targets.ts';

export {
  CIRCUIT_GAUGE_VALUE,
  type CircuitBreakerOptions,
  type CircuitBreakers,
  type CircuitView,
  createCircuitBreakers,
  withCircuits,
} from './circuit-breakers.ts';
export {
  createInternalHandlers,
  type HandlerOptions,
  type InlineRun,
  type InternalDispatch,
  type InternalHandler,
  type ManyHandler,
  PermanentDeliveryError,
} from './internal-handlers.ts';

/** Published (through onDeadLetter) each time a message moves to the dead letters. */
export type DeadLetterEvent = {
  type: 'wal.message.dead-lettered';
  tenantId: string;
  namespace: string;
  messageId: string;
  deliveryId: string;
  attempts: number;
  error: string;
};

export type { DeliverFn };

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

type Outcome = { complete: Completion } | { fail: Failure };

/** Deliveries of one namespace running at once, and those waiting for a free slot. */
type Slots = { active: number; waiting: (() => void)[] };

/** A namespace may hold this many times its concurrency: leased ahead of a free slot. */
const PREFETCH = 16;

const namespaceKey = (m: { tenantId: string; namespace: string }) => `${m.tenantId}/${m.namespace}`;

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
  const hints = readyHints(wake);

  let running = false;
  /** A wake came (NOTIFY, timer, poll) since the last lease looked. */
  let again = false;
  let looping: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let safety: NodeJS.Timeout | undefined;
  let keeper: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  /** Leased messages whose outcome is not recorded yet (in flight, or waiting for the next cycle). */
  const held = new Map<string, LeasedMessage>();
  /** Held messages whose delivery finished; their outcome waits in `outcomes`. */
  const finished = new Set<string>();
  let outcomes: Outcome[] = [];
  const slots = new Map<string, Slots>();
  /** Resolves the loop's wait for an outcome or a wake. */
  let signal: (() => void) | undefined;

  function poke(): void {
    const resolve = signal;
    signal = undefined;
    resolve?.();
  }

  async function deliverMessage(namespace: Namespace | undefined, message: LeasedMessage): Promise<Outcome> {
    const base = { id: message.id, leaseToken: message.leaseToken };
    if (!namespace) {
      return {
        fail: { ...base, error: 'namespace not found', dead: true, targetsDone: message.targetsDone },
      };
    }
    const delivery: Delivery = {
      deliveryId: message.id,
      messageId: message.messageId,
      tenantId: message.tenantId,
      namespace: message.namespace,
      key: message.orderingKey,
      payload: message.payload,
      headers: message.headers,
      attempt: message.attempts,
      createdAt: message.createdAt,
      dueAt: message.dueAt,
    };
    const run = await runTargets(
      deps.deliver,
      handlers.dispatch,
      namespace,
      delivery,
      message.targetsDone,
      log,
      deps.circuits,
    );
    const { targetsDone, attempts, errors } = run;
    if (errors.length === 0) return { complete: { ...base, targetsDone, attempts } };
    const plan = retryPlan(run, message.attempts, systemRetry);
    return { fail: { ...base, error: errors.join('; '), ...plan, targetsDone, attempts } };
  }

  /** Renews, every third of a lease, the leases of the held messages still being delivered. */
  function keepLeases(): void {
    const open = [...held.values()].filter((m) => !finished.has(m.id));
    extendLeases(db, open, leaseMs).catch((err: unknown) => log.warn({ err }, 'could not extend leases'));
  }

  /** Runs one message under its namespace's concurrency limit; its outcome goes to the next cycle. */
  async function run(namespace: Namespace | undefined, message: LeasedMessage): Promise<void> {
    const key = namespaceKey(message);
    let slot = slots.get(key);
    if (!slot) {
      slot = { active: 0, waiting: [] };
      slots.set(key, slot);
    }
    const limit = Math.max(1, Math.min(maxConcurrency, namespace?.consumerConcurrency ?? 1));
    if (slot.active >= limit) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    slot.active++;
    let outcome: Outcome;
    try {
      outcome = await deliverMessage(namespace, message);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const base = { id: message.id, leaseToken: message.leaseToken, targetsDone: message.targetsDone };
      outcome = { fail: { ...base, error: text } };
    } finally {
      slot.active--;
      const next = slot.waiting.shift();
      if (next) next();
      else if (slot.active === 0) slots.delete(key);
    }
    outcomes.push(outcome);
    finished.add(message.id);
    poke();
  }

  /** Starts the deliveries of a leased batch (one namespace lookup per namespace in it). */
  function dispatch(batch: LeasedMessage[]): void {
    const byNamespace = new Map<string, LeasedMessage[]>();
    for (const message of batch) {
      held.set(message.id, message);
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
          for (const message of messages) held.delete(message.id);
          poke();
        },
      );
    }
  }

  async function publishDeadLetters(failed: FailedMessage[]): Promise<void> {
    for (const message of failed) {
      if (message.state !== 'dead') continue;
      const event: DeadLetterEvent = {
        type: 'wal.message.dead-lettered',
        tenantId: message.tenantId,
        namespace: message.namespace,
        messageId: message.messageId,
        deliveryId: message.id,
        attempts: message.attempts,
        error: message.lastError,
      };
      log.warn(event, 'message dead-lettered');
      try {
        await deps.onDeadLetter?.(event);
      } catch (error) {
        log.error({ err: error, messageId: message.messageId }, 'onDeadLetter failed');
      }
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
    const recording = outcomes;
    outcomes = [];
    const limit = lease ? Math.max(0, batchSize - held.size + recording.length) : 0;
    if (recording.length === 0 && limit === 0) return { more: false };
    again = false;
    const completions = recording.flatMap((o) => ('complete' in o ? [o.complete] : []));
    const failures = recording.flatMap((o) => ('fail' in o ? [o.fail] : []));
    // A recorded message of an ordering key may free the next one, which this lease cannot see yet.
    const keyed = recording.some((o) => held.get('complete' in o ? o.complete.id : o.fail.id)?.orderingKey);
    let result: CycleResult;
    try {
      const windows = leaseWindows(recording);
      result = await recordAndLease(db, { completions, failures, limit, leaseMs, windows });
    } catch (error) {
      log.error({ err: error }, 'delivery cycle failed');
      // The outcomes are lost: their leases expire and the messages are delivered again.
      return { more: false };
    } finally {
      forget(recording);
    }
    const stale = [...result.completed.stale, ...result.failed.stale];
    if (stale.length > 0)
      log.warn({ messages: stale }, 'lease expired before the outcome was recorded; left to the newer lease');
    if (result.messages.length > 0) dispatch(result.messages);
    await publishDeadLetters(result.failed.updated);
    const full = limit > 0 && result.messages.length === limit;
    return limit > 0 && !full ? { more: keyed, short: result.at } : { more: full || keyed };
  }

  /** What each namespace holds once `recording` is recorded: the lease fills each one's room. */
  function leaseWindows(recording: Outcome[]): LeaseWindows {
    const leaving = new Set(recording.map((o) => ('complete' in o ? o.complete.id : o.fail.id)));
    const counts = new Map<string, { tenantId: string; namespace: string; count: number }>();
    for (const message of held.values()) {
      if (leaving.has(message.id)) continue;
      const key = namespaceKey(message);
      const entry = counts.get(key);
      if (entry) entry.count++;
      else counts.set(key, { tenantId: message.tenantId, namespace: message.namespace, count: 1 });
    }
    return { held: [...counts.values()], maxConcurrency, prefetch: PREFETCH, tenantShare };
  }

  function forget(recorded: Outcome[]): void {
    for (const o of recorded) {
      const id = 'complete' in o ? o.complete.id : o.fail.id;
      held.delete(id);
      finished.delete(id);
    }
  }

  async function loop(): Promise<void> {
    let more = true;
    let since: Date | undefined;
    let unarmed = false;
    for (;;) {
      const lease = running && (more || again || outcomes.length > 0);
      if (outcomes.length > 0 || (lease && held.size < batchSize)) {
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
