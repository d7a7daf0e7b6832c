import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../namespaces/namespace.ts';
import type { TargetsRun } from './run-targets.ts';

/**
 * The delay before retry number `attempt` (1 after the first failure) under a namespace's policy:
 * exponential base·2^(n-1), linear base·n or fixed base, capped at maxDelayMs, then jittered to
 * delay × [1 - jitter, 1 + jitter]. A target's own Retry-After wins. The same formula as the
 * postgres backend's failMessages statement.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.max(0, retryAfterMs);
  const base = policy.baseDelayMs;
  const raw =
    policy.strategy === 'exponential'
      ? base * 2 ** Math.max(0, attempt - 1)
      : policy.strategy === 'linear'
        ? base * attempt
        : base;
  const capped = Math.min(policy.maxDelayMs, raw);
  return Math.max(0, capped * (1 - policy.jitter + random() * 2 * policy.jitter));
}

/**
 * Mercato's retry policy for its own deliveries: the internal targets its modules declare on
 * system namespaces (EventBus subscribers such as the checkout's watchdog). A tenant admin sets
 * the retry policy of its system namespaces, which is hostile input; that policy governs the
 * tenant's own targets, never these. The operator sets this one (MERCATO_WAL_SYSTEM_RETRY_*, see
 * systemRetryPolicy); this is its default, and the engines' when they are given none.
 */
export const SYSTEM_RETRY_POLICY: Readonly<RetryPolicy> = DEFAULT_RETRY_POLICY;

/** The operator's settings (config.walSystemRetry) as a policy: exponential, jitter 0.2. */
export function systemRetryPolicy(settings: {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}): Readonly<RetryPolicy> {
  const { maxAttempts, baseDelayMs, maxDelayMs } = settings;
  return Object.freeze({ strategy: 'exponential', baseDelayMs, maxDelayMs, maxAttempts, jitter: 0.2 });
}

/** How a failed delivery is retried: dead or not, after how long, with how many attempts in all. */
export type RetryPlan = {
  dead: boolean;
  /** Undefined: the namespace's policy computes the delay (the postgres backend does it in SQL). */
  retryAfterMs: number | undefined;
  /** Undefined: the message's own (the namespace's maxAttempts when it was written). */
  maxAttempts: number | undefined;
};

/**
 * The plan of a failed run at attempt `attempt`. By the namespace's policy and the targets' answers,
 * unless a target a Mercato module declared failed and may be retried (`run.systemRetry`): then by
 * `system` (Mercato's policy, set by the operator) alone, its backoff and its attempts, and neither
 * a tenant target's non-retryable answer nor its Retry-After decides. Nothing a tenant sets
 * (maxAttempts 1, a day between attempts, a webhook answering 400 or Retry-After: 86400 to every
 * event) then gives up on, or postpones, Mercato's own delivery. The tenant's targets still
 * pending are retried with it.
 */
export function retryPlan(
  run: TargetsRun,
  attempt: number,
  system: Readonly<RetryPolicy>,
  random?: () => number,
): RetryPlan {
  if (!run.systemRetry) return { dead: run.dead, retryAfterMs: run.retryAfterMs, maxAttempts: undefined };
  return {
    dead: false,
    retryAfterMs: retryDelayMs(system, attempt, undefined, random),
    maxAttempts: system.maxAttempts,
  };
}
