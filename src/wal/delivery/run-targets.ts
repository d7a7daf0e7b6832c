import type { Logger } from '../../platform/observability/index.ts';
import type { AttemptRecord } from '../backends/postgres/queue.ts';
import type { Namespace, Target } from '../namespaces/namespace.ts';
import { messageType, takesMessage } from '../targets/cloud-event.ts';
import type { Delivery, InternalDispatch, TargetResult } from '../targets/target-result.ts';
import type { CircuitBreakers } from './circuit-breakers.ts';

export type DeliverFn = (
  namespace: Namespace,
  target: Target,
  delivery: Delivery,
  internal: InternalDispatch,
) => Promise<TargetResult>;

/** What one attempt at every target a message has not reached yet came to. */
export type TargetsRun = {
  targetsDone: string[];
  attempts: AttemptRecord[];
  /** `target: error` per target that failed; empty when every target is done. */
  errors: string[];
  /** A target failed for good (non-retryable): straight to the dead letters. */
  dead: boolean;
  /** The longest Retry-After a target asked for. */
  retryAfterMs: number | undefined;
  /**
   * A target a Mercato module declared (`system: true`, an EventBus subscriber) failed and may be
   * retried: the retry is then Mercato's (retryPlan in backoff.ts), not the namespace's.
   */
  systemRetry: boolean;
};

/**
 * Delivers one message to each enabled target of its namespace not in `targetsDone`, one after
 * the other, and records each attempt. A 410 (`disable`) counts as done for this message. An
 * HTTP target goes through its circuit breaker (`circuits`): while it is open the target is not
 * called and the attempt fails with "circuit open". A target whose `types` filter the message's
 * type (messageType) does not match is not called: it is done for this message, and no attempt
 * is recorded. The same for every backend.
 */
export async function runTargets(
  deliver: DeliverFn,
  internal: InternalDispatch,
  namespace: Namespace,
  delivery: Delivery,
  targetsDone: string[],
  log: Logger,
  circuits?: CircuitBreakers,
): Promise<TargetsRun> {
  const done = new Set(targetsDone);
  const attempts: AttemptRecord[] = [];
  const errors: string[] = [];
  let dead = false;
  let retryAfterMs: number | undefined;
  let systemRetry = false;
  const type = messageType(delivery);
  for (const target of namespace.targets) {
    if (!target.enabled || done.has(target.name)) continue;
    // Not an attempt: no wal.attempts row for each target every message of another type passes.
    if (!takesMessage(target, delivery, type)) {
      done.add(target.name);
      continue;
    }
    const startedAt = new Date();
    let result: TargetResult;
    try {
      const call = () => deliver(namespace, target, delivery, internal);
      result =
        circuits && target.type === 'http'
          ? await circuits.run(namespace, target, delivery, call)
          : await call();
    } catch (error) {
      result = { outcome: 'retry', error: error instanceof Error ? error.message : String(error) };
    }
    const record = { target: target.name, startedAt, finishedAt: new Date(), statusCode: result.statusCode };
    if (result.outcome === 'delivered') {
      done.add(target.name);
      attempts.push({ ...record, outcome: 'delivered' });
      continue;
    }
    if (result.outcome === 'disable') {
      done.add(target.name);
      attempts.push({ ...record, outcome: 'skipped', error: result.error });
      log.warn(
        { namespace: namespace.name, target: target.name, error: result.error },
        'target asks to be disabled',
      );
      continue;
    }
    errors.push(`${target.name}: ${result.error}`);
    if (result.outcome === 'dead') {
      dead = true;
      attempts.push({ ...record, outcome: 'dead', error: result.error });
    } else {
      attempts.push({ ...record, outcome: 'failed', error: result.error });
      if (target.system === true && target.type === 'internal') systemRetry = true;
      if (result.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, result.retryAfterMs);
    }
  }
  return { targetsDone: [...done], attempts, errors, dead, retryAfterMs, systemRetry };
}
