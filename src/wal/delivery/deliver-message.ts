import type { Logger } from '../../platform/observability/index.ts';
import type { Completion, Failure, LeasedMessage } from '../backends/postgres/queue.ts';
import type { Namespace, RetryPolicy } from '../namespaces/namespace.ts';
import type { Delivery, InternalDispatch } from '../targets/target-result.ts';
import { retryPlan } from './backoff.ts';
import type { CircuitBreakers } from './circuit-breakers.ts';
import { type DeliverFn, runTargets } from './run-targets.ts';

/** What a leased message's delivery came to, recorded by the engine's next cycle. */
export type Outcome = { complete: Completion } | { fail: Failure };

/** What the postgres engine delivers a leased message with. */
export type MessageDeliveryDeps = {
  deliver: DeliverFn;
  internal: InternalDispatch;
  log: Logger;
  circuits?: CircuitBreakers;
  systemRetry: Readonly<RetryPolicy>;
};

/**
 * Delivers a leased message to the targets of its namespace it has not reached yet, and decides
 * its outcome: complete, or failed with the retry plan (retryPlan: Mercato's policy when one of
 * its own targets failed). A message whose namespace is gone is dead.
 */
export async function deliverMessage(
  deps: MessageDeliveryDeps,
  namespace: Namespace | undefined,
  message: LeasedMessage,
): Promise<Outcome> {
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
    deps.internal,
    namespace,
    delivery,
    message.targetsDone,
    deps.log,
    deps.circuits,
  );
  const { targetsDone, attempts, errors } = run;
  if (errors.length === 0) return { complete: { ...base, targetsDone, attempts } };
  const plan = retryPlan(run, message.attempts, deps.systemRetry);
  return { fail: { ...base, error: errors.join('; '), ...plan, targetsDone, attempts } };
}
