import type { Kysely } from 'kysely';
import type { AppContext } from '../../platform/index.ts';
import {
  type Completion,
  completeMessages,
  extendLeases,
  type Failure,
  failMessages,
  type LeasedMessage,
  leaseBatch,
  nextWakeInMs,
} from '../backends/postgres/queue.ts';
import type { Namespace } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import type { Delivery } from '../targets/target-result.ts';
import {
  createInternalHandlers,
  type HandlerOptions,
  type InternalDispatch,
  type InternalHandler,
} from './internal-handlers.ts';
import { type DeliverFn, runTargets } from './run-targets.ts';

export {
  createInternalHandlers,
  type HandlerOptions,
  type InternalDispatch,
  type InternalHandler,
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
  /** Messages leased per statement. (Default: 64) */
  batchSize?: number;
  /** A slow safety poll, for notifications lost while reconnecting. (Default: 5000) */
  safetyPollMs?: number;
};

export type DeliveryEngine = {
  registerHandler(name: string, handler: InternalHandler, options?: HandlerOptions): void;
  dispatchInternal: InternalDispatch;
  start(): Promise<void>;
  /** Stops leasing and waits for the deliveries in flight. */
  stop(): Promise<void>;
  /** Look for due messages now. */
  wake(): void;
};

type Outcome = { complete: Completion } | { fail: Failure };

const MAX_TIMER_MS = 2_147_483_647;

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * The postgres backend's consumer: wakes on NOTIFY mercato_wal_ready and on a timer armed to the
 * next due time, leases a batch, delivers each message to every enabled target it has not
 * reached yet (at most `consumerConcurrency` at once per namespace), then completes and fails
 * the batch in one fenced statement each.
 *
 * @example
 * const engine = createDeliveryEngine({ ctx, db, loadNamespace: cache.get, deliver: targets.deliver });
 * engine.registerHandler('orders.paid', async (trx, delivery) => { ... });
 * await engine.start();
 */
export function createDeliveryEngine(deps: DeliveryEngineDeps): DeliveryEngine {
  const { ctx, db } = deps;
  const leaseMs = deps.leaseMs ?? 30_000;
  const batchSize = deps.batchSize ?? 64;
  const safetyPollMs = deps.safetyPollMs ?? 5_000;
  const log = ctx.logger.child({ component: 'wal-delivery' });
  const handlers = createInternalHandlers(db);

  let running = false;
  let again = false;
  let looping: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let safety: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;

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
    );
    const { targetsDone, attempts, errors, dead, retryAfterMs } = run;
    if (errors.length === 0) return { complete: { ...base, targetsDone, attempts } };
    return { fail: { ...base, error: errors.join('; '), dead, retryAfterMs, targetsDone, attempts } };
  }

  /** While a batch is in flight, renews the leases of its unfinished messages every third of a lease. */
  function keepLeases(batch: LeasedMessage[], finished: Set<string>): () => void {
    const timer = setInterval(
      () => {
        const open = batch.filter((m) => !finished.has(m.id));
        extendLeases(db, open, leaseMs).catch((err: unknown) => log.warn({ err }, 'could not extend leases'));
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  async function processBatch(batch: LeasedMessage[]): Promise<void> {
    const finished = new Set<string>();
    const release = keepLeases(batch, finished);
    try {
      await deliverBatch(batch, finished);
    } finally {
      release();
    }
  }

  async function deliverBatch(batch: LeasedMessage[], finished: Set<string>): Promise<void> {
    const byNamespace = new Map<string, LeasedMessage[]>();
    for (const message of batch) {
      const key = `${message.tenantId}/${message.namespace}`;
      byNamespace.set(key, [...(byNamespace.get(key) ?? []), message]);
    }
    const outcomes: Outcome[] = [];
    await Promise.all(
      [...byNamespace.values()].map(async (messages) => {
        const first = messages[0] as LeasedMessage;
        const namespace = await deps.loadNamespace(first.tenantId, first.namespace);
        await mapLimit(messages, namespace?.consumerConcurrency ?? 1, async (message) => {
          outcomes.push(await deliverMessage(namespace, message));
          finished.add(message.id);
        });
      }),
    );
    const completions = outcomes.flatMap((o) => ('complete' in o ? [o.complete] : []));
    const failures = outcomes.flatMap((o) => ('fail' in o ? [o.fail] : []));
    const completed = await completeMessages(db, completions);
    const failed = await failMessages(db, failures);
    const stale = [...completed.stale, ...failed.stale];
    if (stale.length > 0)
      log.warn({ messages: stale }, 'lease expired before the outcome was recorded; left to the newer lease');
    for (const message of failed.updated) {
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

  async function loop(): Promise<void> {
    while (running) {
      again = false;
      let leased = 0;
      let since: Date | undefined;
      try {
        const batch = await leaseBatch(db, { limit: batchSize, leaseMs });
        since = batch.at;
        leased = batch.messages.length;
        if (leased > 0) await processBatch(batch.messages);
      } catch (error) {
        log.error({ err: error }, 'delivery batch failed');
      }
      if (leased > 0) continue;
      try {
        await armTimer(since);
      } catch (error) {
        log.error({ err: error }, 'could not arm the due-time timer');
      }
      if (!again) return;
    }
  }

  function wake(): void {
    if (!running) return;
    again = true;
    if (!looping) looping = loop().finally(() => (looping = undefined));
  }

  return {
    registerHandler: handlers.register,
    dispatchInternal: handlers.dispatch,
    wake,
    async start() {
      if (running) return;
      running = true;
      unlisten = await ctx.db.listen('mercato_wal_ready', wake, wake);
      safety = setInterval(wake, safetyPollMs);
      safety.unref();
      wake();
    },
    async stop() {
      running = false;
      if (timer) clearTimeout(timer);
      if (safety) clearInterval(safety);
      timer = undefined;
      safety = undefined;
      await unlisten?.();
      unlisten = undefined;
      await looping;
    },
  };
}
