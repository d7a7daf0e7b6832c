import type { RetryPolicy } from '../namespaces/namespace.ts';

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
