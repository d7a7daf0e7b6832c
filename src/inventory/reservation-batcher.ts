import type { Kysely } from 'kysely';
import { isTransientConflict } from '../platform/db/index.ts';
import type { EventBus, EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { type BatchEntry, type BatchResult, runBatch } from './reservation-batch.ts';
import { type OpResult, opKeys, type ReservationOp } from './reservation-ops.ts';
import type { InventoryTables } from './tables.ts';

export type BatcherOptions = {
  /** Operations per transaction at most. (Default: 500) */
  maxBatch?: number;
  /**
   * Operations waiting for a transaction at most; beyond it submit is refused with 503
   * SERVICE_UNAVAILABLE, so a flood cannot grow the queue (and each batch's scan of it) without
   * bound. (Default: 10,000)
   */
  maxQueue?: number;
  /**
   * Operations of one tenant waiting at most (the batcher serves every tenant of the process): one
   * tenant's flood is refused with 503 beyond it and leaves the rest of the queue to the others.
   * (Default: a quarter of maxQueue)
   */
  maxQueuePerTenant?: number;
  /** Transactions in flight at once: while one commits, the next gathers. (Default: 2; 1 on PGlite) */
  maxInFlight?: number;
  /** Told after each committed batch the earliest expiry it wrote (the sweeper re-arms its timer). */
  onExpiry?: (at: Date) => void;
  /** Told after each committed batch what it carried (metrics). */
  onBatch?: (result: BatchResult, ops: ReservationOp[]) => void;
};

export type BatcherStats = { batches: number; ops: number };

export type ReservationBatcher = {
  /** Queues one operation; resolves with its own result once the transaction that carried it committed. */
  submit(tenantId: string, op: ReservationOp, meta?: EventMeta): Promise<OpResult>;
  stats(): BatcherStats;
  /** Waits for queued operations to finish; later submissions are refused. */
  close(): Promise<void>;
};

type Pending = BatchEntry & {
  tenantId: string;
  resolve: (result: OpResult) => void;
  reject: (error: unknown) => void;
};

/**
 * Errors worth running an operation again for: a transaction undone by a concurrent one (a
 * deadlock, a serialization failure, an item a batch may not wait for: reservation-batch.ts), or
 * a key another process inserted meanwhile.
 */
const isRetryable = (error: unknown) =>
  isTransientConflict(error) || (error as { code?: unknown })?.code === '23505';

/**
 * The hot-SKU batcher, the inventory's counterpart of the WAL's group commit: reservation
 * operations arriving together queue up and go out as ONE transaction per tenant (runBatch), so
 * 200 shoppers reserving one variant cost a handful of transactions that lock its row once each,
 * instead of 200 transactions queueing on one row lock. Each caller resolves with its own answer
 * once that transaction committed. Each tenant has a queue of its own, bounded, and the tenants
 * waiting take turns: one tenant's backlog delays another's reservation by a batch, not by itself.
 *
 * Two operations on one key in one batch are applied in order (the second sees the first, so an
 * idempotent replay works inside a batch); a key whose batch is still in flight waits for the
 * next, so it sees that one committed. When a batch fails, each of its operations is retried
 * alone, so one bad operation fails only itself; deadlocks and a key inserted by another process
 * meanwhile are retried a few times.
 */
export function createReservationBatcher(
  db: Kysely<InventoryTables>,
  events: EventBus,
  options: BatcherOptions = {},
): ReservationBatcher {
  const maxBatch = options.maxBatch ?? 500;
  const maxInFlight = Math.max(1, options.maxInFlight ?? 2);
  const maxQueue = options.maxQueue ?? 10_000;
  const maxQueuePerTenant = options.maxQueuePerTenant ?? Math.max(1, Math.floor(maxQueue / 4));
  const stats: BatcherStats = { batches: 0, ops: 0 };
  // Each tenant's waiting operations, oldest first; the map's order is the tenants' turns.
  const queues = new Map<string, Pending[]>();
  let queued = 0;
  const flights = new Set<Promise<void>>();
  const inFlight = new Set<string>();
  let scheduled = false;
  let closed = false;
  // A transfer has two keys (from and to): it waits while either is in flight or waiting.
  const keysOf = (p: Pending) => opKeys(p.op).map((key) => `${p.tenantId}\u0000${key}`);

  const schedule = () => {
    if (flights.size >= maxInFlight || scheduled || queued === 0) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      const group = take();
      if (group.length === 0) return;
      const keys = group.flatMap(keysOf);
      for (const key of keys) inFlight.add(key);
      const flight: Promise<void> = run(group).finally(() => {
        for (const key of keys) inFlight.delete(key);
        flights.delete(flight);
        schedule();
      });
      flights.add(flight);
      schedule();
    });
  };

  /**
   * The queued operations of the first tenant in turn that has some to go, up to maxBatch,
   * skipping keys in flight; that tenant's turn then comes after every other waiting tenant's.
   */
  const take = (): Pending[] => {
    for (const [tenantId, waiting] of queues) {
      const group: Pending[] = [];
      const rest: Pending[] = [];
      const deferred = new Set<string>();
      for (const pending of waiting) {
        const keys = keysOf(pending);
        // A key behind one that waits must wait too, to keep one key's operations in order.
        if (group.length >= maxBatch || keys.some((key) => inFlight.has(key) || deferred.has(key))) {
          for (const key of keys) deferred.add(key);
          rest.push(pending);
          continue;
        }
        group.push(pending);
      }
      if (group.length === 0) continue;
      queues.delete(tenantId);
      if (rest.length > 0) queues.set(tenantId, rest);
      queued -= group.length;
      return group;
    }
    return [];
  };

  const flush = async (group: Pending[]): Promise<BatchResult> => {
    stats.batches += 1;
    const result = await runBatch(db, events, group[0]!.tenantId, group);
    // The batch committed: a failing hook past this point must not make run() apply it again.
    try {
      if (result.earliestExpiry) options.onExpiry?.(result.earliestExpiry);
      options.onBatch?.(
        result,
        group.map((p) => p.op),
      );
    } catch {
      // A hook (sweeper, metrics) must never fail a reservation.
    }
    return result;
  };

  const settle = (group: Pending[], result: BatchResult) => {
    for (const [i, pending] of group.entries()) {
      const answer = result.answers[i]!;
      if ('error' in answer) pending.reject(answer.error);
      else pending.resolve(answer);
    }
  };

  const alone = async (pending: Pending) => {
    for (let attempt = 1; ; attempt++) {
      try {
        settle([pending], await flush([pending]));
        return;
      } catch (error) {
        if (attempt < 4 && isRetryable(error)) continue;
        pending.reject(error);
        return;
      }
    }
  };

  const run = async (group: Pending[]) => {
    try {
      settle(group, await flush(group));
    } catch (error) {
      if (group.length === 1 && !isRetryable(error)) {
        group[0]!.reject(error);
        return;
      }
      // One bad operation must not fail the others: each runs alone (in order).
      for (const pending of group) await alone(pending);
    }
  };

  return {
    submit(tenantId, op, meta) {
      if (closed) {
        return Promise.reject(new AppError('SERVICE_UNAVAILABLE', 'inventory is shutting down'));
      }
      const waiting = queues.get(tenantId);
      if (queued >= maxQueue || (waiting?.length ?? 0) >= maxQueuePerTenant) {
        return Promise.reject(
          new AppError('SERVICE_UNAVAILABLE', 'too many reservations are waiting: try again shortly', {
            retryAfterSeconds: 1,
          }),
        );
      }
      return new Promise<OpResult>((resolve, reject) => {
        stats.ops += 1;
        const pending = { tenantId, op, meta, resolve, reject };
        if (waiting) waiting.push(pending);
        else queues.set(tenantId, [pending]);
        queued += 1;
        schedule();
      });
    },
    stats: () => ({ ...stats }),
    async close() {
      closed = true;
      while (flights.size > 0 || scheduled || queued > 0) {
        if (flights.size > 0) await Promise.race(flights);
        else await new Promise((resolve) => setTimeout(resolve, 1));
      }
    },
  };
}
