import { type RawBuilder, sql } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { stateMachine } from '../platform/state-machine.ts';
import { recordAudit } from './audit.ts';
import type { ExceptionsDeps } from './deps.ts';
import { VIEW_COLUMNS } from './exception-queries.ts';
import { type ExceptionView, toView, type ViewedRow } from './exception-view.ts';
import { EXCEPTION_EVENTS, publishExceptionEvents } from './outbound-events.ts';
import type { ExceptionStatus } from './tables.ts';

/**
 * An exception's lifecycle. Operators acknowledge, resolve and close; retries (retry.ts) move it
 * through RETRY_IN_PROGRESS to RETRIED_SUCCESS or RETRIED_FAILED. An operator may resolve without
 * acknowledging first (a known cause, a duplicate), also while a retry waits for its outcome (a
 * requeued message may wait hours for its backoff): the attempt still ends, and records how, but
 * leaves the status resolved (an outcome moves only RETRY_IN_PROGRESS: retry-outcome.ts). Not
 * acknowledge: RETRY_IN_PROGRESS does not lead to ACKNOWLEDGED. The operator closes after a
 * resolution or a successful retry. Only capture moves an exception back to NEW: a repeat of a
 * resolved, closed or successfully retried one reopens it (capture-store.ts), as Sentry reopens a
 * regressed issue.
 */
export const exceptionStatus = stateMachine<ExceptionStatus>('exception', {
  NEW: ['ACKNOWLEDGED', 'RESOLVED', 'RETRY_IN_PROGRESS'],
  ACKNOWLEDGED: ['RESOLVED', 'RETRY_IN_PROGRESS'],
  RETRY_IN_PROGRESS: ['RETRIED_SUCCESS', 'RETRIED_FAILED', 'RESOLVED'],
  RETRIED_SUCCESS: ['RESOLVED', 'CLOSED', 'NEW'],
  RETRIED_FAILED: ['ACKNOWLEDGED', 'RESOLVED', 'RETRY_IN_PROGRESS'],
  RESOLVED: ['CLOSED', 'NEW'],
  CLOSED: ['NEW'],
});

export type Change = 'acknowledge' | 'resolve' | 'close';
export type ChangeInput = { change: Change; note?: string | undefined; resolution?: string | undefined };

export const TARGET: Record<Change, ExceptionStatus> = {
  acknowledge: 'ACKNOWLEDGED',
  resolve: 'RESOLVED',
  close: 'CLOSED',
};
export const AUDIT_ACTION: Record<Change, string> = {
  acknowledge: 'acknowledged',
  resolve: 'resolved',
  close: 'closed',
};

/** The statuses a change may start from (the target itself excluded: that is a repeat). */
export const startsOf = (to: ExceptionStatus): ExceptionStatus[] =>
  exceptionStatus.states.filter((s) => exceptionStatus.can(s, to));

/** The SET list of a change: who and when, with the note where the table keeps one. */
export function setList(input: ChangeInput, actor: string): RawBuilder<unknown> {
  const note = input.note ?? null;
  switch (input.change) {
    case 'acknowledge':
      return sql`status = 'ACKNOWLEDGED', acknowledged_by = ${actor}, acknowledged_at = now(),
        acknowledge_note = ${note}, updated_at = now()`;
    case 'resolve':
      return sql`status = 'RESOLVED', resolved_by = ${actor}, resolved_at = now(),
        resolution = ${input.resolution ?? null}, resolve_note = ${note}, updated_at = now()`;
    case 'close':
      // The close's note lives in the audit: the table has columns for the other two only.
      return sql`status = 'CLOSED', updated_at = now()`;
  }
}

/** ExceptionResolved of an exception just resolved or closed (subject: its id, as for its other events, so they stay in order). */
export const resolvedEvent = (view: ExceptionView) => ({
  type: EXCEPTION_EVENTS.resolved,
  subject: view.id,
  data: view,
});

/** Drops the cached payloads of exceptions now resolved or closed; a cache that fails only logs. */
export async function invalidate(
  deps: ExceptionsDeps,
  tenantId: string,
  transactionIds: string[],
): Promise<void> {
  for (let i = 0; i < transactionIds.length; i += 16) {
    await Promise.all(
      transactionIds.slice(i, i + 16).map((id) =>
        deps.hooks.invalidatePayload(tenantId, id).catch((err: unknown) => {
          deps.ctx.logger.warn({ err, tenantId }, 'dropping a cached exception payload failed');
        }),
      ),
    );
  }
}

/**
 * Acknowledges, resolves or closes one exception: 404 when the tenant has none by that id, 409
 * ILLEGAL_TRANSITION naming both states, and a repeat (acknowledging an acknowledged one) answers
 * the exception as it is, without a second audit entry. The audit entry and, for resolve and
 * close, ExceptionResolved commit with the change.
 */
export async function changeStatus(
  deps: ExceptionsDeps,
  tenantId: string,
  transactionId: string,
  actor: string,
  input: ChangeInput,
  meta: EventMeta,
): Promise<ExceptionView> {
  const to = TARGET[input.change];
  const { view, changed } = await withTenant(deps.db, tenantId, async (trx) => {
    const { rows } = await sql<ViewedRow>`
      select ${VIEW_COLUMNS} from exceptions.exceptions
      where tenant_id = ${tenantId} and transaction_id = ${transactionId}
      for update`.execute(trx);
    const row = rows[0];
    if (!row) throw new AppError('NOT_FOUND', 'exception not found');
    if (row.status === to) return { view: toView(row), changed: false };
    exceptionStatus.assert(row.status, to);
    const updated = await sql<ViewedRow>`
      update exceptions.exceptions set ${setList(input, actor)}
      where id = ${row.id}
      returning ${VIEW_COLUMNS}`.execute(trx);
    const view = toView(updated.rows[0]!);
    await recordAudit(trx, [
      {
        tenantId,
        exceptionId: row.id,
        action: AUDIT_ACTION[input.change],
        actor,
        note: input.note,
        details: { from: row.status, to, ...(input.resolution ? { resolution: input.resolution } : {}) },
      },
    ]);
    if (input.change !== 'acknowledge') {
      await publishExceptionEvents(deps.events, trx, tenantId, [resolvedEvent(view)], meta);
    }
    return { view, changed: true };
  });
  if (changed && input.change !== 'acknowledge') await invalidate(deps, tenantId, [transactionId]);
  return view;
}
