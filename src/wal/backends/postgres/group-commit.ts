import type { Kysely } from 'kysely';
import { AppError } from '../../../platform/http/index.ts';
import type { WalTables } from '../../tables.ts';
import { insertMessageRows } from './insert-rows.ts';
import { keyOf, type NewMessageRow, type WriteOutcome } from './message-rows.ts';
import { idempotencyConflict } from './write-errors.ts';

export { freshRowsStatement, insertFreshRows, insertMessageRows } from './insert-rows.ts';
export { type NewMessageRow, type StoredMessage, toStored, type WriteOutcome } from './message-rows.ts';
export { idempotencyConflict, isUnavailable } from './write-errors.ts';

export type GroupCommitOptions = {
  /** Rows per flush at most (a single submission larger than this still goes out alone). */
  maxBatch?: number;
  /** How long the first write of an idle committer waits for company; 0 = the next tick. */
  maxWaitMs?: number;
  /**
   * Flushes in flight at once (default 2): while one waits for its commit (the fsync),
   * the next gathers the writes that arrived meanwhile and sends its INSERT.
   */
  maxInFlight?: number;
  /** Called after every flush (committed or not): for metrics and tests. */
  onFlush?: (flush: { rows: number; submissions: number; ok: boolean }) => void;
};

export type GroupCommitStats = {
  /** Flushes run, each one statement (a multi-row INSERT) and one commit. */
  flushes: number;
  submissions: number;
  rows: number;
};

export type GroupCommitter = {
  /**
   * Writes rows durably; resolves once the commit that carried them returned, with one outcome per
   * row. Rejects with 409 IDEMPOTENCY_KEY_REUSED (and writes none of them) when a messageId exists
   * with a different body; with the flush's error when its transaction failed.
   */
  submit(rows: NewMessageRow[]): Promise<WriteOutcome[]>;
  stats(): GroupCommitStats;
  /** Waits for queued writes to go out; later submissions are refused. */
  close(): Promise<void>;
};

type Pending = {
  rows: NewMessageRow[];
  /** keyOf each row, made once. */
  keys: string[];
  resolve: (outcomes: WriteOutcome[]) => void;
  reject: (error: unknown) => void;
};

/**
 * Group commit for the PostgreSQL backend: writes that arrive while a flush is in flight queue up
 * and go out together in ONE statement that is its own transaction (wal.insert_messages, in
 * autocommit), so N concurrent writers cost one round trip and one fsync instead of N. Each caller
 * resolves when that commit returns.
 *
 * The flush runs with the pool's owner role, outside any tenant: one transaction
 * may carry rows of several tenants, which is what makes the commit shared. That is safe because
 * every row carries its tenant_id and was validated and authorized by the route before it was
 * submitted; nothing here reads rows on a caller's behalf except the conflicting row of the same
 * (tenant_id, namespace, message_id).
 *
 * Isolation between callers in one flush: a submission whose messageIds exist with another body
 * is rejected and its fresh rows deleted in the same statement (all or nothing per submission);
 * two pending submissions with the same messageId never share a flush (the later one waits for the
 * next, so it sees the first as committed); and when a flush fails, each of its
 * submissions is retried alone, so one bad submission fails only itself.
 */
export function createGroupCommitter(
  db: Kysely<WalTables>,
  options: GroupCommitOptions = {},
): GroupCommitter {
  const maxBatch = options.maxBatch ?? 1000;
  const maxWaitMs = options.maxWaitMs ?? 0;
  const maxInFlight = Math.max(1, options.maxInFlight ?? 2);
  const stats: GroupCommitStats = { flushes: 0, submissions: 0, rows: 0 };
  let queue: Pending[] = [];
  const flushing = new Set<Promise<void>>();
  /** Keys of the rows in flushes in flight: a repeat waits for a later flush, to see them committed. */
  const inFlight = new Set<string>();
  let scheduled = false;
  let closed = false;

  const schedule = () => {
    if (flushing.size >= maxInFlight || scheduled || queue.length === 0) return;
    scheduled = true;
    const go = () => {
      scheduled = false;
      const group = take();
      if (group.length === 0) return;
      const keys = group.flatMap((p) => p.keys);
      for (const key of keys) inFlight.add(key);
      const flight: Promise<void> = run(group).finally(() => {
        for (const key of keys) inFlight.delete(key);
        flushing.delete(flight);
        schedule();
      });
      flushing.add(flight);
      schedule();
    };
    if (maxWaitMs > 0) setTimeout(go, maxWaitMs);
    else setImmediate(go);
  };

  /** Takes whole submissions up to maxBatch rows, leaving any that repeat a messageId for the next flush. */
  const take = (): Pending[] => {
    const group: Pending[] = [];
    const rest: Pending[] = [];
    const keys = new Set<string>();
    let rows = 0;
    for (const pending of queue) {
      const full = group.length > 0 && rows + pending.rows.length > maxBatch;
      const repeats = pending.keys.some((key) => keys.has(key) || inFlight.has(key));
      if (full || repeats) {
        rest.push(pending);
        continue;
      }
      for (const key of pending.keys) keys.add(key);
      rows += pending.rows.length;
      group.push(pending);
    }
    queue = rest;
    return group;
  };

  /**
   * One statement for the group, its own transaction (autocommit: one round trip); returns per
   * submission its outcomes or its rejection. The statement already removed the rows of a
   * rejected submission.
   */
  const flush = async (group: Pending[]) => {
    const rows = group.flatMap((p) => p.rows);
    const submissions = group.flatMap((p, i) => p.rows.map(() => i));
    stats.flushes += 1;
    let ok = false;
    try {
      const { outcomes, mismatch } = await insertMessageRows(db, rows, submissions);
      const answers: ({ outcomes: WriteOutcome[] } | { error: AppError })[] = [];
      let at = 0;
      for (const pending of group) {
        const mine = outcomes.slice(at, at + pending.rows.length);
        const bad = mismatch.slice(at, at + pending.rows.length);
        at += pending.rows.length;
        if (bad.some(Boolean)) {
          const conflicts = pending.rows.filter((_, i) => bad[i]).map((r) => r.message_id);
          answers.push({ error: idempotencyConflict(conflicts) });
        } else {
          answers.push({ outcomes: mine });
        }
      }
      ok = true;
      return answers;
    } finally {
      try {
        options.onFlush?.({ rows: rows.length, submissions: group.length, ok });
      } catch {
        // A metrics hook must never fail a write.
      }
    }
  };

  const settle = (pending: Pending, answer: { outcomes: WriteOutcome[] } | { error: AppError }) => {
    if ('error' in answer) pending.reject(answer.error);
    else pending.resolve(answer.outcomes);
  };

  const run = async (group: Pending[]) => {
    try {
      const answers = await flush(group);
      for (const [i, pending] of group.entries()) settle(pending, answers[i]!);
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return;
      }
      // One bad submission must not fail the others: retry each alone.
      for (const pending of group) {
        try {
          settle(pending, (await flush([pending]))[0]!);
        } catch (alone) {
          pending.reject(alone);
        }
      }
    }
  };

  return {
    submit(rows) {
      if (closed)
        return Promise.reject(new AppError('SERVICE_UNAVAILABLE', 'the WAL writer is shutting down'));
      if (rows.length === 0) return Promise.resolve([]);
      return new Promise<WriteOutcome[]>((resolve, reject) => {
        stats.submissions += 1;
        stats.rows += rows.length;
        queue.push({ rows, keys: rows.map(keyOf), resolve, reject });
        schedule();
      });
    },
    stats: () => ({ ...stats }),
    async close() {
      closed = true;
      while (flushing.size > 0 || scheduled || queue.length > 0) {
        if (flushing.size > 0) await Promise.race(flushing);
        else await new Promise((resolve) => setTimeout(resolve, maxWaitMs || 1));
      }
    },
  };
}
