import { createHash } from 'node:crypto';
import type { AppContext } from '../platform/context.ts';

/** A payload fetched from a source, with the URL it came from (a changed source misses). */
export type CachedPayload = { url: string; payload: unknown };

export type PayloadCache = {
  get(tenantId: string, transactionId: string): Promise<CachedPayload | undefined>;
  set(tenantId: string, transactionId: string, value: CachedPayload): Promise<void>;
  drop(tenantId: string, transactionId: string): Promise<void>;
};

/** How long a fetched payload is reused. (Default: 5 minutes) */
export const PAYLOAD_TTL_SECONDS = 300;
/** In-process bounds: entries and bytes (of JSON) kept at most, least recently used dropped first. */
const MAX_ENTRIES = 1000;
const MAX_BYTES = 32 * 1024 * 1024;

// Transaction ids are tenant text of any shape: hashed, they cannot reach into another key (no
// separator, no Redis Cluster hash tag) and have one length.
const idOf = (transactionId: string) => createHash('sha256').update(transactionId).digest('base64url');

/**
 * Payloads fetched from sources: in Redis when the process has one (shared by every process, keys
 * `<MERCATO_REDIS_PREFIX>exceptions:<tenant>:payload:<sha256 of the transaction id>`, expiring
 * after the TTL), else in this process's memory, bounded. A cache that fails is a miss: the
 * payload is fetched again rather than the detail failing.
 */
export function createPayloadCache(ctx: AppContext, ttlSeconds = PAYLOAD_TTL_SECONDS): PayloadCache {
  const redis = ctx.redis;
  if (redis) {
    const keyOf = (tenantId: string, transactionId: string) =>
      `${ctx.config.redisPrefix}exceptions:${tenantId}:payload:${idOf(transactionId)}`;
    const quiet = (what: string) => (err: unknown) => {
      ctx.logger.debug({ err }, `payload cache ${what} failed`);
      return undefined;
    };
    return {
      async get(tenantId, transactionId) {
        const text = await redis.get(keyOf(tenantId, transactionId)).catch(quiet('read'));
        return text ? (JSON.parse(text) as CachedPayload) : undefined;
      },
      async set(tenantId, transactionId, value) {
        await redis
          .set(keyOf(tenantId, transactionId), JSON.stringify(value), 'EX', ttlSeconds)
          .catch(quiet('write'));
      },
      async drop(tenantId, transactionId) {
        await redis.del(keyOf(tenantId, transactionId)).catch(quiet('drop'));
      },
    };
  }
  // Map order is use order: the first entries are the least recently used.
  const entries = new Map<string, { text: string; expires: number }>();
  let bytes = 0;
  const remove = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    bytes -= entry.text.length;
    entries.delete(key);
  };
  const keyOf = (tenantId: string, transactionId: string) => `${tenantId}:${idOf(transactionId)}`;
  return {
    async get(tenantId, transactionId) {
      const key = keyOf(tenantId, transactionId);
      const entry = entries.get(key);
      if (!entry) return undefined;
      remove(key);
      if (entry.expires <= Date.now()) return undefined;
      entries.set(key, entry);
      bytes += entry.text.length;
      return JSON.parse(entry.text) as CachedPayload;
    },
    async set(tenantId, transactionId, value) {
      const key = keyOf(tenantId, transactionId);
      const text = JSON.stringify(value);
      remove(key);
      if (text.length > MAX_BYTES) return;
      entries.set(key, { text, expires: Date.now() + ttlSeconds * 1000 });
      bytes += text.length;
      for (const oldest of entries.keys()) {
        if (entries.size <= MAX_ENTRIES && bytes <= MAX_BYTES) break;
        remove(oldest);
      }
    },
    async drop(tenantId, transactionId) {
      remove(keyOf(tenantId, transactionId));
    },
  };
}
