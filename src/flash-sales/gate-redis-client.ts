import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../platform/observability/index.ts';

// The gate's Redis connection (gate-redis.ts): failing fast, and telling an outage once.

/** Reply errors that mean "Redis cannot serve now" rather than "the command is wrong". */
const TRANSIENT_REPLY = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|OOM|NOREPLICAS|MOVED|ASK)\b/;

/**
 * Whether an error from the client means Redis is unreachable or too slow: anything but a reply
 * error (connection refused or reset, the command timeout, no connection and no offline queue,
 * the retries spent), and the reply errors of a server that cannot serve now.
 */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name !== 'ReplyError') return true;
  return TRANSIENT_REPLY.test(err.message);
}

/** Resolves when the client is ready, closed, or after `ms`, whichever comes first. */
export function settleWithin(redis: Redis, ms: number): Promise<void> {
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

/** Closes a connection: QUIT when it is up (its replies drained), else at once. */
export async function closeClient(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}

/** Fail fast: an outage is answered at once (no offline queue), a slow Redis within the timeout. */
export function clientOptions(commandTimeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    // A command in flight when the connection drops fails at once and is never sent again: a
    // resent giveBack without a key would give units back twice.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1000,
    enableAutoPipelining: false,
    // Reconnect soon after Redis returns, so admission resumes within half a second.
    retryStrategy: (times: number) => Math.min(times * 50, 500),
  };
}

/** Logs an outage once when it starts and once when Redis is back, not per attempt. */
export function watchOutages(redis: Redis, url: string, logger: Logger | undefined): void {
  let where = 'Redis';
  try {
    const parsed = new URL(url);
    where = `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {}
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger?.warn(
      { err: err.message },
      `flash-sale gate: cannot reach Redis at ${where}; admission answers 503`,
    );
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger?.info(`flash-sale gate: Redis at ${where} is back; admission resumes`);
  });
}
