import { type Kysely, sql, type Transaction } from 'kysely';
import { type CommitStatement, runCommitStatement } from '../../../platform/db/index.ts';
import { AppError } from '../../../platform/http/index.ts';
import type { BackendName, MessageState, WalTables } from '../../tables.ts';

type Db = Kysely<WalTables> | Transaction<WalTables>;

/** One message ready to insert into wal.messages (already validated and authorized by the caller). */
export type NewMessageRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  ordering_key: string | null;
  /** JSON text. */
  payload: string;
  /** JSON text. */
  headers: string;
  request_hash: string;
  backend: BackendName;
  state: MessageState;
  due_at: Date;
  max_attempts: number;
  created_at: Date;
  /** Targets it reached already, in the write's transaction (inline delivery); default none. */
  targets_done?: string[];
  /** Attempts made already (1 after an inline delivery); default 0. */
  attempts?: number;
};

/** The stored message a write came to: the new row, or the one an earlier write with the same messageId left. */
export type StoredMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  requestHash: string;
  backend: BackendName;
  state: MessageState;
  dueAt: Date;
  createdAt: Date;
};

/** What one row of a write came to. `replayed`: the messageId existed with the same body; nothing new was written. */
export type WriteOutcome = { message: StoredMessage; replayed: boolean };

type ReturnedRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  request_hash: string;
  backend: BackendName;
  state: MessageState;
  due_at: Date | string;
  created_at: Date | string;
};

const keyOf = (r: { tenant_id: string; namespace: string; message_id: string }) =>
  `${r.tenant_id}\u0000${r.namespace}\u0000${r.message_id}`;

/** The stored message a row (sent or read back) describes; `state` when the store decided another. */
export function toStored(row: ReturnedRow, state: MessageState = row.state): StoredMessage {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    namespace: row.namespace,
    messageId: row.message_id,
    requestHash: row.request_hash,
    backend: row.backend,
    state,
    dueAt: new Date(row.due_at),
    createdAt: new Date(row.created_at),
  };
}

/** 409 for messageIds that exist with another body. */
export function idempotencyConflict(messageIds: string[]): AppError {
  const list = messageIds.map((id) => JSON.stringify(id)).join(', ');
  return new AppError('IDEMPOTENCY_KEY_REUSED', `messageId ${list} was written with a different body`, {
    messageIds,
  });
}

/**
 * The rows as one JSON array of arrays, as wal.message_rows reads them (migration 0038): each
 * [s (its submission), id, tenant_id, namespace, message_id, ordering_key, payload, headers,
 * request_hash, backend, state, due_at, max_attempts, created_at, targets_done, attempts]. Payload
 * and headers are JSON text already; ids, hashes, namespace names (^[a-z0-9][a-z0-9._-]*$) and the
 * enums need no escaping, so only messageId and key go through JSON.stringify.
 */
function rowsJson(rows: NewMessageRow[], submissions: readonly number[] | undefined): string {
  let json = '[';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const key = r.ordering_key === null ? 'null' : JSON.stringify(r.ordering_key);
    json +=
      `${i > 0 ? ',' : ''}[${submissions?.[i] ?? 0},"${r.id}","${r.tenant_id}","${r.namespace}",` +
      `${JSON.stringify(r.message_id)},${key},${r.payload},${r.headers},"${r.request_hash}",` +
      `"${r.backend}","${r.state}","${r.due_at.toISOString()}",${r.max_attempts},` +
      `"${r.created_at.toISOString()}"` +
      (r.targets_done ? `,${JSON.stringify(r.targets_done)},${r.attempts ?? 0}` : '') +
      ']';
  }
  return `${json}]`;
}

/** An insert's failure as the caller's error: a retry (503) or a namespace gone (404), else itself. */
function insertError(error: unknown, rows: NewMessageRow[]): unknown {
  const code = (error as { code?: unknown }).code;
  // Conflicted, then vanished before the read (deleted by retention): a 503 the caller retries.
  if (code === '40001') {
    return new AppError('SERVICE_UNAVAILABLE', 'a message changed during the write; retry', {
      retryAfterSeconds: 1,
    });
  }
  // A namespace deleted since the caller looked it up (the check of migration 0011).
  if (code === '23503') {
    const names = [...new Set(rows.map((r) => r.namespace))].join(', ');
    return new AppError('NOT_FOUND', `namespace ${names} not found`);
  }
  return error;
}

/**
 * Inserts rows whose message ids were just made (the event bus's UUIDv7s) in one plain INSERT,
 * wal.insert_fresh_messages (migration 0038): no earlier write can hold such an id, so there is no
 * conflict to look for and nothing to read back. In the caller's transaction.
 */
export async function insertFreshRows(db: Db, rows: NewMessageRow[]): Promise<void> {
  if (rows.length === 0) return;
  await runCommitStatement(db as Kysely<unknown>, freshRowsStatement(db, rows));
}

/** insertFreshRows' statement, to run later: what the event bus queues for its caller's commit. */
export function freshRowsStatement(db: Db, rows: NewMessageRow[]): CommitStatement {
  return {
    query: sql`select wal.insert_fresh_messages(${rowsJson(rows, undefined)}::jsonb)`.compile(db),
    failure: (error) => insertError(error, rows),
  };
}

/** What wal.insert_messages answers (migrations 0010, 0033 and 0038). */
type Inserted = { fresh: string[]; stored?: ReturnedRow[] };

/**
 * Inserts rows in ONE statement, wal.insert_messages (migrations 0010 and 0038): a multi-row INSERT … ON
 * CONFLICT (tenant_id, namespace, messageId) DO NOTHING, then a read of the stored rows of the
 * messageIds that conflicted (an earlier write), then the removal of every row of a submission
 * one of whose messageIds is stored with another body. `submissions[i]` numbers the submission
 * row i belongs to (default: all one). Returns one outcome per row, in order; `mismatch` marks
 * rows whose messageId exists with a different request hash. The (tenant, namespace, messageId)
 * of rows must be distinct. In the caller's transaction, or, given the pool, its own (autocommit).
 */
export async function insertMessageRows(
  db: Db,
  rows: NewMessageRow[],
  submissions?: readonly number[],
): Promise<{ outcomes: WriteOutcome[]; mismatch: boolean[] }> {
  if (rows.length === 0) return { outcomes: [], mismatch: [] };
  // One JSON parameter instead of 13 per row: a batch of 1,000 binds one value, not 13,000.
  // Only ids come back for new rows: a row inserted is stored as it was sent.
  let answer: Inserted;
  try {
    const result = await sql<{ r: Inserted | string }>`
      select wal.insert_messages(${rowsJson(rows, submissions)}::jsonb) as r`.execute(db);
    const r = result.rows[0]!.r;
    answer = typeof r === 'string' ? (JSON.parse(r) as Inserted) : r;
  } catch (error) {
    throw insertError(error, rows);
  }
  const fresh = new Set(answer.fresh);
  const existing = new Map<string, ReturnedRow>();
  for (const row of answer.stored ?? []) existing.set(keyOf(row), row);
  const outcomes: WriteOutcome[] = [];
  const mismatch: boolean[] = [];
  for (const r of rows) {
    if (fresh.has(r.id)) {
      outcomes.push({ message: toStored(r), replayed: false });
      mismatch.push(false);
      continue;
    }
    const found = existing.get(keyOf(r))!;
    outcomes.push({ message: toStored(found), replayed: true });
    mismatch.push(found.request_hash !== r.request_hash);
  }
  return { outcomes, mismatch };
}

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

/** True for errors that mean the database is unreachable or shutting down (worth a 503, not a 500). */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (/^(08|53|57)[0-9A-Z]{3}$/.test(code)) return true;
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code);
}
