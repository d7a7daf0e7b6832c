import type { Kysely } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type {
  AttemptHistory,
  Decision,
  StreamBackendName,
  StreamMessage,
} from '../backends/stream/contract.ts';
import { recordDeadLetter } from '../dlq/index.ts';
import type { Namespace, RetryPolicy } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import type { Delivery, InternalDispatch } from '../targets/target-result.ts';
import { retryDelayMs, retryPlan, SYSTEM_RETRY_POLICY } from './backoff.ts';
import type { CircuitBreakers } from './circuit-breakers.ts';
import { announceDeadLetter } from './dead-letter-events.ts';
import type { DeadLetterEvent } from './index.ts';
import { type DeliverFn, runTargets } from './run-targets.ts';

export type StreamDeliveryDeps = {
  db: Kysely<WalTables>;
  deliver: DeliverFn;
  internal: InternalDispatch;
  logger: Logger;
  onDeadLetter?: (event: DeadLetterEvent) => void | Promise<void>;
  /** The process's breakers per HTTP target (the postgres engine shares them). */
  circuits?: CircuitBreakers;
  /** How Mercato's own targets on system namespaces are retried (MERCATO_WAL_SYSTEM_RETRY_*). (Default: SYSTEM_RETRY_POLICY) */
  systemRetry?: Readonly<RetryPolicy>;
};

/** If the dead letter cannot be written to PostgreSQL, the message is tried again after this. */
const DEAD_LETTER_RETRY_MS = 5_000;

/**
 * The WAL's side of a stream backend's delivery: runs the targets, then decides by the
 * namespace's policy (Mercato's when one of its own targets failed: retryPlan): ack, retry after
 * a backoff, or dead. A dead message is written to the PostgreSQL dead letters (with its history)
 * before the backend is told, so it is never lost: when that write fails, the decision is a retry.
 */
export function createStreamDelivery(deps: StreamDeliveryDeps, backend: StreamBackendName) {
  const log = deps.logger.child({ component: 'wal-delivery', backend });
  const systemRetry = deps.systemRetry ?? SYSTEM_RETRY_POLICY;
  return async function deliver(
    namespace: Namespace,
    message: StreamMessage,
    history: AttemptHistory,
  ): Promise<Decision> {
    const delivery: Delivery = {
      deliveryId: message.id,
      messageId: message.messageId,
      tenantId: message.tenantId,
      namespace: message.namespace,
      key: message.key,
      payload: JSON.parse(message.payload),
      headers: JSON.parse(message.headers) as Record<string, string>,
      attempt: message.attempts,
      createdAt: new Date(message.createdAt),
      dueAt: new Date(message.dueAt),
    };
    const { targetsDone: done } = message;
    const run = await runTargets(deps.deliver, deps.internal, namespace, delivery, done, log, deps.circuits);
    const { targetsDone, attempts } = run;
    if (run.errors.length === 0) return { action: 'ack', targetsDone, attempts };
    const error = run.errors.join('; ');
    const plan = retryPlan(run, message.attempts, systemRetry);
    if (!plan.dead && message.attempts < (plan.maxAttempts ?? message.maxAttempts)) {
      const delayMs = retryDelayMs(namespace.retry, message.attempts, plan.retryAfterMs);
      return { action: 'retry', delayMs, error, targetsDone, attempts };
    }
    const numbered = attempts.map((a) => ({ ...a, attempt: message.attempts }));
    try {
      await withTenant(deps.db, message.tenantId, (trx) =>
        recordDeadLetter(trx, {
          ...message,
          dueAt: new Date(message.dueAt),
          createdAt: new Date(message.createdAt),
          backend,
          targetsDone,
          error,
          history: [...history, ...numbered],
        }),
      );
    } catch (err) {
      log.error({ err, messageId: message.messageId }, 'could not record a dead letter; retrying later');
      return { action: 'retry', delayMs: DEAD_LETTER_RETRY_MS, error, targetsDone, attempts };
    }
    await announceDeadLetter(message, error, log, deps.onDeadLetter);
    return { action: 'dead', error, targetsDone, attempts };
  };
}
