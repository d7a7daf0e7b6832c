import type { RedisOptions } from 'ioredis';

// The gate's Redis connection (gate-redis.ts): failing fast.

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
