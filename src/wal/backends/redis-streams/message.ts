import type { Redis } from 'ioredis';
import { readyWithin } from '../../../platform/redis-client.ts';
import { RedisOutcomeUnknownError, trackCommands } from '../../../platform/redis-command-timeout.ts';
import type { MessageState } from '../../tables.ts';
import type { NewMessageRow } from '../postgres/group-commit.ts';
import { BackendTimeoutError } from '../stream/bounded.ts';
import {
  type AttemptHistory,
  type AttemptRecord,
  BackendUnavailableError,
  type StreamMessage,
} from '../stream/contract.ts';

export const BACKEND = 'redis-streams' as const;

/**
 * A row as the append script reads it: SCRIPT_ROW_FIELDS values in ARGV, in this order (numbers
 * as text, no key = ''); flat, so the payload JSON is not wrapped in JSON once more.
 */
export function pushScriptRow(args: (string | number)[], row: NewMessageRow): void {
  args.push(
    row.id,
    row.tenant_id,
    row.namespace,
    row.message_id,
    row.ordering_key ?? '',
    row.payload,
    row.headers,
    row.request_hash,
    row.due_at.getTime(),
    row.created_at.getTime(),
    row.max_attempts,
  );
}

/** HGETALL's flat [field, value, ...] answer as a record. */
export function fieldsOf(flat: unknown): Record<string, string> {
  const list = flat as string[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}

const num = (v: string | undefined) => (v ? Number(v) : 0);
const numOrNull = (v: string | undefined) => (v ? Number(v) : null);

export function messageOf(f: Record<string, string>): StreamMessage {
  return {
    id: f['id'] ?? '',
    tenantId: f['tenantId'] ?? '',
    namespace: f['namespace'] ?? '',
    messageId: f['messageId'] ?? '',
    key: f['key'] ? f['key'] : null,
    payload: f['payload'] ?? 'null',
    headers: f['headers'] ?? '{}',
    requestHash: f['requestHash'] ?? '',
    dueAt: num(f['dueAt']),
    createdAt: num(f['createdAt']),
    maxAttempts: num(f['maxAttempts']),
    attempts: num(f['attempts']),
    targetsDone: JSON.parse(f['targetsDone'] || '[]') as string[],
  };
}

export function viewFields(f: Record<string, string>) {
  return {
    state: (f['state'] ?? 'pending') as MessageState,
    lastError: f['lastError'] ? f['lastError'] : null,
    deliveredAt: numOrNull(f['deliveredAt']),
    deadAt: numOrNull(f['deadAt']),
  };
}

/** One history record as stored (dates as ISO text). */
export function historyEntry(record: AttemptRecord, attempt: number): string {
  return JSON.stringify({ ...record, attempt });
}

export function historyOf(list: unknown): AttemptHistory {
  return (list as string[]).map((text) => {
    const r = JSON.parse(text) as AttemptHistory[number] & { startedAt: string; finishedAt: string };
    return { ...r, startedAt: new Date(r.startedAt), finishedAt: new Date(r.finishedAt) };
  });
}

export type Entry = [id: string, fields: string[] | null];

/**
 * XREADGROUP's answer as [stream, entries] pairs, whatever the protocol: RESP2 nests pairs, RESP3
 * answers a map (a flat [key, value, ...] array in ioredis' legacy mapping, an object otherwise).
 */
export function streamsOf(reply: unknown): Array<[string, Entry[]]> {
  if (!reply) return [];
  if (Array.isArray(reply)) {
    if (reply.length === 0 || Array.isArray(reply[0])) return reply as Array<[string, Entry[]]>;
    const pairs: Array<[string, Entry[]]> = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1] as Entry[]]);
    return pairs;
  }
  if (reply instanceof Map) return [...reply.entries()] as Array<[string, Entry[]]>;
  return Object.entries(reply as Record<string, Entry[]>);
}

const CONNECTION =
  /ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|Connection is closed|Connection reset|Stream isn't writeable|enableOfflineQueue|MaxRetriesPerRequest|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN/;

/** Whether an error means the server cannot be reached (rather than a bad command). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'AbortError') return true;
  const code = (err as { code?: unknown }).code;
  return CONNECTION.test(`${typeof code === 'string' ? code : ''} ${err.message}`);
}

/**
 * Runs fn against redis, failing fast with BackendUnavailableError when the client is not
 * connected (so a client with an offline queue never makes a write wait) or the connection fails.
 * With `unanswered` (append), a failure after one of its commands was written to the connection
 * and before Redis answered it (a timeout, the connection lost or reset after the write: the
 * script may have run) is BackendTimeoutError instead, never a reason to write elsewhere
 * (`../stream/bounded.ts`). Only a command that never left the client (not connected, refused
 * from its offline queue) or that Redis refused leaves BackendUnavailableError.
 */
export function guarded<T>(
  redis: Redis,
  what: string,
  fn: () => Promise<T>,
  options?: { unanswered: true },
): Promise<T> {
  const unavailable = (err: unknown) => {
    if (err instanceof RedisOutcomeUnknownError)
      throw new BackendTimeoutError(BACKEND, `redis ${what}: ${err.message}`, { cause: err });
    if (isConnectionError(err)) {
      const message = err instanceof Error ? err.message : String(err);
      throw new BackendUnavailableError(BACKEND, `redis ${what} failed: ${message}`, { cause: err });
    }
    throw err;
  };
  const run = options?.unanswered ? () => trackCommands(fn) : fn;
  // The common case without an extra async frame: it is on every write.
  if (redis.status === 'ready') return run().catch(unavailable);
  return (async () => {
    // A lazyConnect client that was never used: connect it (fails fast when unreachable).
    if (redis.status === 'wait') await redis.connect().catch(() => {});
    // A client still making its first connection (a process that just started) gets a moment;
    // one that lost Redis (reconnecting) answers at once, so writes fail over without waiting.
    if (redis.status === 'connecting' || redis.status === 'connect') await readyWithin(redis, 1000);
    if (redis.status !== 'ready') {
      throw new BackendUnavailableError(BACKEND, `redis is not connected (${redis.status}); ${what} failed`);
    }
    return run().catch(unavailable);
  })();
}

/** `guarded` for a call that stores (append), with `unanswered`. */
export function guardedStore<T>(redis: Redis, what: string, fn: () => Promise<T>): Promise<T> {
  return guarded(redis, what, fn, { unanswered: true });
}
