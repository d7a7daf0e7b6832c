import { withTenant } from '../platform/db/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import type { ExceptionsDeps } from './deps.ts';
import { checkoutResult, retryOrder } from './order-retry.ts';
import { finishRetry } from './retry-outcome.ts';
import { type PendingAttempt, pendingAttempts } from './retry-store.ts';

/** How often the requeued dead letters this process is waiting for are looked at. (Default: 1 s) */
const SETTLE_INTERVAL_MS = 1000;
/**
 * A source retry runs within its request (three calls of at most 30 s each, plus backoff); one
 * still pending after this long lost the process running it. (Default: 10 minutes)
 */
const ABANDONED_AFTER_MS = 10 * 60_000;

type Result = { status: 'succeeded' | 'failed'; outcome: string };

/**
 * Ends pending attempts whose outcome is known by now. A requeued dead letter's attempt waits for
 * the message: delivered is a success, dead again a failure (with the WAL's last error), a message
 * gone from the WAL a failure that says its delivery cannot be confirmed; while it is still
 * queued, or its backend cannot be asked, the attempt stays pending. A checkout's attempt waits
 * for its new order: completed is a success, failed or cancelled a failure. Settling happens on a
 * short timer for the attempts this process made, and whenever an exception's retries are read or
 * it is retried again (so an attempt whose process stopped is settled by the next reader).
 */
export function createRetrySettler(
  deps: ExceptionsDeps,
  invalidate: (tenantId: string, transactionId: string) => Promise<void>,
  logger: Logger,
) {
  // Attempts this process requeued (or whose checkout still runs) and waits for: attempt id → tenant.
  const watched = new Map<string, string>();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let closed = false;

  async function decide(tenantId: string, attempt: PendingAttempt): Promise<Result | undefined> {
    const ref = attempt.source_ref;
    if (attempt.action === 'requeue' && ref.kind === 'wal-dead-letter') {
      let message: Awaited<ReturnType<ExceptionsDeps['wal']['deadLetters']['state']>>;
      try {
        message = await deps.wal.deadLetters.state(tenantId, ref.namespace, ref.messageId);
      } catch {
        return undefined;
      }
      if (!message) {
        return {
          status: 'failed',
          outcome: `the requeued message ${ref.messageId} is no longer in ${ref.namespace} (purged or discarded): its delivery cannot be confirmed`,
        };
      }
      if (message.state === 'delivered')
        return { status: 'succeeded', outcome: `delivered (${ref.namespace})` };
      if (message.state === 'dead') {
        return { status: 'failed', outcome: `dead again: ${message.lastError ?? 'no error recorded'}` };
      }
      return undefined;
    }
    // A checkout ends with its order (the saga's watchdog sees to that): no abandonment rule.
    if (attempt.action === 'checkout') {
      try {
        const order = await withTenant(deps.db, tenantId, (trx) =>
          retryOrder(deps, trx, tenantId, attempt.id),
        );
        return checkoutResult(order);
      } catch {
        return undefined;
      }
    }
    if (Date.now() - new Date(attempt.started_at).getTime() > ABANDONED_AFTER_MS) {
      return {
        status: 'failed',
        outcome: 'abandoned: no outcome was recorded (the process running it stopped)',
      };
    }
    return undefined;
  }

  /** Settles the pending attempts of one exception, or those with the given ids; returns those still pending. */
  async function settle(
    tenantId: string,
    which: { transactionId: string } | { ids: string[] },
  ): Promise<string[]> {
    const pending = await withTenant(deps.db, tenantId, (trx) => pendingAttempts(trx, tenantId, which));
    const still: string[] = [];
    for (const attempt of pending) {
      const result = await decide(tenantId, attempt);
      if (!result) {
        still.push(attempt.id);
        continue;
      }
      const finished = await withTenant(deps.db, tenantId, (trx) =>
        finishRetry(deps, trx, tenantId, attempt.id, result, 'system:retry'),
      );
      if (finished) await invalidate(tenantId, attempt.transaction_id);
    }
    return still;
  }

  async function tick(): Promise<void> {
    const byTenant = new Map<string, string[]>();
    for (const [id, tenantId] of watched) byTenant.set(tenantId, [...(byTenant.get(tenantId) ?? []), id]);
    for (const [tenantId, ids] of byTenant) {
      try {
        const still = new Set(await settle(tenantId, { ids }));
        for (const id of ids) if (!still.has(id)) watched.delete(id);
      } catch (err) {
        logger.warn({ err, tenantId }, 'settling requeued retries failed; trying again');
      }
    }
  }

  function schedule(): void {
    if (timer || ticking || closed || watched.size === 0) return;
    timer = setTimeout(() => {
      timer = undefined;
      ticking = tick().finally(() => {
        ticking = undefined;
        schedule();
      });
    }, SETTLE_INTERVAL_MS);
  }

  return {
    settle,
    /** Waits (on the timer) for a requeued message to be delivered or dead again, or a checkout's order to end. */
    watch(tenantId: string, attemptId: string): void {
      watched.set(attemptId, tenantId);
      schedule();
    },
    async close(): Promise<void> {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      await ticking;
    },
  };
}
