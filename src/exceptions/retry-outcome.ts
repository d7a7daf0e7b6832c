import { recordAudit } from './audit.ts';
import type { ExceptionsDeps } from './deps.ts';
import { type ExceptionRow, toView } from './exception-view.ts';
import { EXCEPTION_EVENTS, publishExceptionEvents } from './outbound-events.ts';
import {
  type AttemptRow,
  type AttemptStatus,
  attemptView,
  finishAttempt,
  markRetried,
} from './retry-store.ts';
import type { ExceptionStatus, ExceptionsTrx } from './tables.ts';

export type Finished = { exception: ExceptionRow; attempt: AttemptRow };

/** Where an operator's resolve or close left an exception: a retry's failure there alerts no one. */
const SETTLED: ExceptionStatus[] = ['RESOLVED', 'CLOSED'];

/**
 * Ends a pending attempt in trx with its outcome: the attempt row, the exception's status
 * (RETRIED_SUCCESS or RETRIED_FAILED), the audit entry (`retry.succeeded` / `retry.failed` by
 * `actor`), ExceptionRetryCompleted to exception-events, and after a failure the alert rules
 * (hooks.onRetryFailed), all committing together. Undefined when the attempt had already ended
 * (another process settled it): nothing is recorded twice. The caller drops the cached payload
 * after the commit.
 *
 * The outcome sets the status only while the exception is still RETRY_IN_PROGRESS, the status its
 * start set (markRetried decides on the row as it is once locked). Anything that moved it on
 * meanwhile stands: an operator's resolve, a repeat that reopened it, an acknowledgement after
 * that. The attempt, the audit and the event still say how it ended; a failure of an exception
 * resolved or closed meanwhile fires no alert (an operator settled it: nobody is to be called).
 */
export async function finishRetry(
  deps: ExceptionsDeps,
  trx: ExceptionsTrx,
  tenantId: string,
  attemptId: string,
  result: { status: Exclude<AttemptStatus, 'pending'>; outcome: string },
  actor: string,
): Promise<Finished | undefined> {
  const attempt = await finishAttempt(trx, attemptId, result.status, result.outcome);
  if (!attempt) return undefined;
  const succeeded = result.status === 'succeeded';
  const exception = await markRetried(
    trx,
    attempt.exception_id,
    succeeded ? 'RETRIED_SUCCESS' : 'RETRIED_FAILED',
  );
  await recordAudit(trx, [
    {
      tenantId,
      exceptionId: exception.id,
      action: succeeded ? 'retry.succeeded' : 'retry.failed',
      actor,
      details: { attempt: attempt.attempt, action: attempt.action, outcome: attempt.outcome },
    },
  ]);
  await publishExceptionEvents(deps.events, trx, tenantId, [
    {
      type: EXCEPTION_EVENTS.retryCompleted,
      subject: exception.id,
      data: { exception: toView(exception), attempt: attemptView(attempt) },
    },
  ]);
  if (!succeeded && !SETTLED.includes(exception.status))
    await deps.hooks.onRetryFailed(trx, tenantId, exception);
  return { exception, attempt };
}
