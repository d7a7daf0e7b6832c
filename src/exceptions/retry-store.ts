import { type Selectable, sql } from 'kysely';
import { isoTime } from '../platform/db/iso-time.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { ExceptionRow } from './exception-view.ts';
import type { ExceptionStatus, ExceptionsTrx, RetryAction, RetryAttemptsTable, SourceRef } from './tables.ts';

export type AttemptRow = Selectable<RetryAttemptsTable>;
export type AttemptStatus = AttemptRow['status'];

/** 000's RetryAttempt as the API shows it. */
export type AttemptView = {
  id: string;
  attempt: number;
  action: RetryAction;
  status: AttemptStatus;
  outcome: string | null;
  requestedBy: string;
  startedAt: string;
  finishedAt: string | null;
};

export function attemptView(row: AttemptRow): AttemptView {
  return {
    id: row.id,
    attempt: row.attempt,
    action: row.action,
    status: row.status,
    outcome: row.outcome,
    requestedBy: row.requested_by,
    startedAt: isoTime(row.started_at),
    finishedAt: row.finished_at === null ? null : isoTime(row.finished_at),
  };
}

/** Outcomes are kept to the column's bound. */
const bounded = (outcome: string | null) => (outcome === null ? null : outcome.slice(0, 4000));

/** The tenant's exception by transaction id; `lock` takes its row lock (one retry decides at a time). */
export async function findException(
  trx: ExceptionsTrx,
  tenantId: string,
  transactionId: string,
  options: { lock?: boolean } = {},
): Promise<ExceptionRow | undefined> {
  let query = trx
    .selectFrom('exceptions.exceptions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('transaction_id', '=', transactionId);
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

/** Every attempt of an exception, first first. */
export function listAttempts(trx: ExceptionsTrx, exceptionId: string): Promise<AttemptRow[]> {
  return trx
    .selectFrom('exceptions.retry_attempts')
    .selectAll()
    .where('exception_id', '=', exceptionId)
    .orderBy('attempt')
    .execute();
}

/** A pending attempt with what settling it needs: its exception's transaction id and source. */
export type PendingAttempt = AttemptRow & { transaction_id: string; source_ref: SourceRef };

/** The pending attempts of one exception (by transaction id), or those with the given ids. */
export function pendingAttempts(
  trx: ExceptionsTrx,
  tenantId: string,
  which: { transactionId: string } | { ids: string[] },
): Promise<PendingAttempt[]> {
  let query = trx
    .selectFrom('exceptions.retry_attempts as a')
    .innerJoin('exceptions.exceptions as e', 'e.id', 'a.exception_id')
    .selectAll('a')
    .select(['e.transaction_id', 'e.source_ref'])
    .where('a.tenant_id', '=', tenantId)
    .where('a.status', '=', 'pending');
  query =
    'ids' in which
      ? query.where('a.id', 'in', which.ids.length > 0 ? which.ids : [uuidv7()])
      : query.where('e.transaction_id', '=', which.transactionId);
  return query.orderBy('a.attempt').execute() as Promise<PendingAttempt[]>;
}

/** Records a new attempt (number: one past the exception's last). */
export async function insertAttempt(
  trx: ExceptionsTrx,
  attempt: {
    tenantId: string;
    exceptionId: string;
    action: RetryAction;
    requestedBy: string;
    /** What a pending attempt is waiting for (a checkout names its new order). */
    outcome?: string | null;
  },
): Promise<AttemptRow> {
  const { rows } = await sql<{ n: number }>`
    select coalesce(max(attempt), 0)::int + 1 as n from exceptions.retry_attempts
    where exception_id = ${attempt.exceptionId}`.execute(trx);
  return trx
    .insertInto('exceptions.retry_attempts')
    .values({
      id: uuidv7(),
      tenant_id: attempt.tenantId,
      exception_id: attempt.exceptionId,
      attempt: rows[0]?.n ?? 1,
      action: attempt.action,
      status: 'pending',
      outcome: bounded(attempt.outcome ?? null),
      requested_by: attempt.requestedBy,
      started_at: new Date(),
      finished_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Ends a pending attempt; undefined when it had already ended (another process settled it). */
export function finishAttempt(
  trx: ExceptionsTrx,
  attemptId: string,
  status: Exclude<AttemptStatus, 'pending'>,
  outcome: string | null,
): Promise<AttemptRow | undefined> {
  return trx
    .updateTable('exceptions.retry_attempts')
    .set({ status, outcome: bounded(outcome), finished_at: new Date() })
    .where('id', '=', attemptId)
    .where('status', '=', 'pending')
    .returningAll()
    .executeTakeFirst();
}

/** A retry begins: RETRY_IN_PROGRESS, one more retry counted. */
export function markRetrying(trx: ExceptionsTrx, exceptionId: string): Promise<ExceptionRow> {
  return trx
    .updateTable('exceptions.exceptions')
    .set((eb) => ({
      status: 'RETRY_IN_PROGRESS',
      retry_count: eb('retry_count', '+', 1),
      updated_at: new Date(),
    }))
    .where('id', '=', exceptionId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * A retry ended: RETRIED_SUCCESS or RETRIED_FAILED, unless the exception was moved on meanwhile
 * (an operator resolved it while the retry ran; a repeat reopened it, and perhaps an operator
 * acknowledged it since): that status stands. The CASE reads the row as it is once the update
 * holds its lock (PostgreSQL evaluates it again on the version a concurrent change committed).
 */
export function markRetried(
  trx: ExceptionsTrx,
  exceptionId: string,
  status: Extract<ExceptionStatus, 'RETRIED_SUCCESS' | 'RETRIED_FAILED'>,
): Promise<ExceptionRow> {
  return trx
    .updateTable('exceptions.exceptions')
    .set({
      status: sql<ExceptionStatus>`case when status = 'RETRY_IN_PROGRESS' then ${status} else status end`,
      updated_at: new Date(),
    })
    .where('id', '=', exceptionId)
    .returningAll()
    .executeTakeFirstOrThrow();
}
