import type { Kysely } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import type { IdentityTables } from '../tables.ts';
import { loadSessionRecords } from './refresh-tokens.ts';
import type { SessionRecord } from './session-cache.ts';

type Waiter = { resolve(record: SessionRecord | undefined): void; reject(error: unknown): void };

/** Most sessions one query reads. */
const MAX_BATCH = 500;

/**
 * Reads sessions for the session cache's misses, grouped: per tenant, the checks that arrive
 * while one query is out share the next (the WAL's group commit, for reads), so a stampede of
 * signed-in shoppers the cache has not seen costs one query per batch instead of one per request.
 * Each caller gets its own session's record (undefined: the user is not in the tenant).
 */
export function createSessionLoader(db: Kysely<IdentityTables>) {
  const queues = new Map<string, Map<string, Waiter[]>>();
  const busy = new Set<string>();

  async function flush(tenantId: string): Promise<void> {
    const queue = queues.get(tenantId);
    if (!queue) return;
    const keys = [...queue.keys()].slice(0, MAX_BATCH);
    const batch = keys.map((key) => [key, queue.get(key)!] as const);
    for (const key of keys) queue.delete(key);
    if (queue.size === 0) queues.delete(tenantId);
    busy.add(tenantId);
    try {
      const sessions = keys.map((key) => {
        const [userId, familyId] = key.split(':') as [string, string];
        return { userId, familyId };
      });
      const records = await withTenant(db, tenantId, (trx) => loadSessionRecords(trx, tenantId, sessions));
      for (const [key, waiters] of batch) for (const w of waiters) w.resolve(records.get(key));
    } catch (error) {
      for (const [, waiters] of batch) for (const w of waiters) w.reject(error);
    } finally {
      busy.delete(tenantId);
      if (queues.has(tenantId)) void flush(tenantId);
    }
  }

  return {
    /** The session's record, read with the others asked for meanwhile. */
    load(tenantId: string, userId: string, familyId: string): Promise<SessionRecord | undefined> {
      return new Promise((resolve, reject) => {
        const key = `${userId.toLowerCase()}:${familyId.toLowerCase()}`;
        let queue = queues.get(tenantId);
        if (!queue) {
          queue = new Map();
          queues.set(tenantId, queue);
        }
        const waiters = queue.get(key);
        if (waiters) waiters.push({ resolve, reject });
        else queue.set(key, [{ resolve, reject }]);
        if (!busy.has(tenantId)) {
          busy.add(tenantId);
          // The first of a burst waits one turn of the event loop for the others to join it.
          setImmediate(() => void flush(tenantId));
        }
      });
    },
  };
}
