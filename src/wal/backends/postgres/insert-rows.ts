import { type Kysely, sql, type Transaction } from 'kysely';
import { type CommitStatement, runCommitStatement } from '../../../platform/db/index.ts';
import type { WalTables } from '../../tables.ts';
import {
  keyOf,
  type NewMessageRow,
  type ReturnedRow,
  rowsJson,
  toStored,
  type WriteOutcome,
} from './message-rows.ts';
import { insertError } from './write-errors.ts';

type Db = Kysely<WalTables> | Transaction<WalTables>;

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
