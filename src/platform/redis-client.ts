import type { Redis } from 'ioredis';
import type { Logger } from './observability/index.ts';

/** `host:port` of a Redis URL, for log lines (never credentials). */
function describe(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'Redis';
  }
}

/**
 * How long a command of Mercato's Redis client may go unanswered before it rejects with
 * "Command timed out": a Redis that took the connection and then stays silent (stopped,
 * overloaded, a network dropping packets: the connection stays up) otherwise kept every command,
 * and the request holding it, waiting for ever. 5 s is the longest bound a caller sets itself (the
 * WAL's write append, `WRITE_BACKEND_TIMEOUT_MS`; its relay and prune take 2 s), so theirs always
 * answers first, with its own meaning; it bounds the callers with none (rate limits and counters,
 * the redis-streams consumer's scripts, caches, targets), far above any command Mercato sends
 * when Redis is well. A blocking read (XREADGROUP / XREAD BLOCK ms, BLPOP …) gets its block plus
 * the bound; one that blocks for ever (BLOCK 0) is left unbounded. Duplicates keep the rule.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5_000;

/**
 * Mercato's Redis client: two retries per command while reconnecting, and reconnecting for ever
 * (ioredis's default backoff, up to 2 s between attempts). An outage is logged once when it
 * starts (a warning) and once when Redis is back (info), not per attempt; meanwhile the counters
 * fall back to in-process ones and redis-streams namespaces to their fallback (or 503).
 * Auto-pipelining stays off: measured here with 64 concurrent WAL appends it made them slower
 * (about 8,000/s against 9,100/s without), as the process and Redis then take turns instead of
 * working at once. Connect with `await client.connect()`; it rejects when Redis is unreachable
 * but keeps trying in the background. Every command is bounded (`REDIS_COMMAND_TIMEOUT_MS`,
 * `commandTimeoutMs` for tests), queued ones too: the offline queue holds a command at most that
 * long, and at most until the third reconnect attempt fails (`maxRetriesPerRequest: 2`). A
 * command that times out on its connection resets it: the client connects again, so later
 * commands are not written behind it to a connection that fell silent (redis-command-timeout.ts).
 */
export async function createRedisClient(
  url: string,
  logger: Logger,
  commandTimeoutMs = REDIS_COMMAND_TIMEOUT_MS,
): Promise<Redis> {
  const { boundedRedisClass } = await import('./redis-command-timeout.ts');
  const BoundedRedis = await boundedRedisClass();
  const redis = new BoundedRedis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    enableAutoPipelining: false,
    commandTimeout: commandTimeoutMs,
  });
  watchOutages(redis, url, logger, {
    down: (where) =>
      `Redis at ${where} is unreachable: rate limits and login throttles use in-process counters, ` +
      'and redis-streams namespaces their fallback (or 503), until it returns',
    back: (where) => `Redis at ${where} is back: shared counters and redis-streams namespaces resume`,
  });
  return redis;
}

/**
 * Logs an outage of `redis` once when it starts (a warning naming host:port, never credentials)
 * and once when Redis is back (info), not per attempt; `say` words both lines for its user.
 */
export function watchOutages(
  redis: Redis,
  url: string,
  logger: Logger | undefined,
  say: { down(where: string): string; back(where: string): string },
): void {
  const where = describe(url);
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger?.warn({ err: err.message }, say.down(where));
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger?.info(say.back(where));
  });
}

/** Resolves when the client is ready or gave up (closed, ended), or after `ms`, whichever comes first. */
export function readyWithin(redis: Redis, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off('ready', done);
      redis.off('close', done);
      redis.off('end', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once('ready', done);
    redis.once('close', done);
    redis.once('end', done);
  });
}

/**
 * Closes a connection: QUIT when it is up (its replies drained), else at once: quit() on a client
 * still reconnecting waits in its offline queue, or for a reply an unreachable Redis never sends.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
}
