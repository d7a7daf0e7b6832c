import { AppError, type Principal } from '../../platform/http/index.ts';
import type { WalDeps } from '../deps.ts';
import type { Namespace } from '../namespaces/index.ts';

// The write routes' rate limit (write-routes.ts), per credential and namespace.

const principalKey = (p: Principal) => (p.kind === 'user' ? `user:${p.userId}` : `key:${p.apiKeyId}`);

/**
 * 429 RATE_LIMITED when the principal would exceed namespace.rateLimitPerSecond messages in the
 * current one-second window (shared through ctx.counters: Redis when configured). A batch counts
 * each of its messages.
 */
export async function takeRate(
  deps: WalDeps,
  principal: Principal,
  namespace: Namespace,
  count: number,
): Promise<void> {
  const limit = namespace.rateLimitPerSecond;
  if (limit === null) return;
  const key = `wal:write:${namespace.tenantId}:${namespace.name}:${principalKey(principal)}`;
  const refuse = (ttlSeconds: number) => {
    throw new AppError(
      'RATE_LIMITED',
      `namespace ${namespace.name} accepts ${limit} message(s) per second per credential`,
      { retryAfterSeconds: Math.max(1, ttlSeconds) },
    );
  };
  if (count > 1) {
    const seen = await deps.ctx.counters.peek(key);
    if (seen.count + count > limit) refuse(seen.ttlSeconds);
  }
  const counts = await Promise.all(Array.from({ length: count }, () => deps.ctx.counters.increment(key, 1)));
  const last = counts.reduce((a, b) => (b.count > a.count ? b : a));
  if (last.count > limit) refuse(last.ttlSeconds);
}
