import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { MessageState } from '../../tables.ts';
import {
  idempotencyConflict,
  type NewMessageRow,
  toStored,
  type WriteOutcome,
} from '../postgres/group-commit.ts';
import {
  NamespaceRetiredError,
  type StreamBackend,
  type StreamConsumer,
  type StreamMessageView,
} from '../stream/contract.ts';
import { startConsumer } from './consumer.ts';
import { dropKeys } from './drop-keys.ts';
import { historyKey, keysOfBase, messageKey, type NsKeys, nsKeys, registryKey } from './keys.ts';
import {
  BACKEND,
  fieldsOf,
  guarded,
  guardedStore,
  historyOf,
  messageOf,
  pushScriptRow,
  streamsOf,
  viewFields,
} from './message.ts';
import { defineScripts } from './scripts.ts';

/**
 * How long a retired namespace's empty stream (with its consumer group) and parked counter are
 * kept: consumers that have not yet heard that the namespace moved may still read the stream.
 */
const RETIRED_LEFTOVER_SECONDS = 86_400;

export type RedisStreamsOptions = {
  /** Prefix of every key; default 'mercato:wal'. */
  prefix?: string;
  /** This process's consumer name in the group; default host-pid-random. */
  consumerName?: string;
  /** Entries read per XREADGROUP / XAUTOCLAIM; default 100. */
  batchSize?: number;
  /** How long one XREADGROUP blocks; default 1000 ms (bounds how soon stop() and namespace changes are seen). */
  blockMs?: number;
};

/**
 * The Redis Streams backend (see README.md). `redis` is the platform's client: the backend never
 * quits it; blocking reads go through duplicates it opens and closes itself.
 */
export function createRedisStreamsBackend(redis: Redis, options: RedisStreamsOptions = {}): StreamBackend {
  const prefix = options.prefix ?? 'mercato:wal';
  const consumerName = options.consumerName ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const batchSize = options.batchSize ?? 100;
  const blockMs = options.blockMs ?? 1000;
  const scripts = defineScripts(redis);
  const registered = new Set<string>();
  const consumers = new Set<StreamConsumer>();
  let consumerCount = 0;
  // The keys of the namespaces written to, by tenant and name (a namespace's keys never change).
  const keyCache = new Map<string, NsKeys>();
  const keysOf = (tenantId: string, namespace: string): NsKeys => {
    const id = `${tenantId}/${namespace}`;
    let keys = keyCache.get(id);
    if (!keys) {
      if (keyCache.size >= 10_000) keyCache.clear();
      keys = nsKeys(prefix, tenantId, namespace);
      keyCache.set(id, keys);
    }
    return keys;
  };

  async function appendGroup(rows: NewMessageRow[], revive: boolean): Promise<WriteOutcome[]> {
    const first = rows[0]!;
    const keys = keysOf(first.tenant_id, first.namespace);
    if (!registered.has(keys.base)) {
      await redis.sadd(registryKey(prefix), keys.base);
      registered.add(keys.base);
    }
    const now = Date.now();
    const args: (string | number)[] = [
      keys.stream,
      keys.delayed,
      keys.parked,
      keys.retired,
      keys.dropped,
      keys.base,
      now,
      revive ? '1' : '0',
    ];
    for (const row of rows) pushScriptRow(args, row);
    const answer = (await scripts.append(...args)) as string[];
    if (answer[0] === 'conflict') throw idempotencyConflict(answer.slice(1));
    // Dropped (deleted; maybe made again since): refused as retired, so the writer reads the
    // namespace again (404 when it is gone, a reopen that clears the marker when it was made again).
    if (answer[0] === 'dropped') {
      registered.delete(keys.base);
      await redis.srem(registryKey(prefix), keys.base);
    }
    if (answer[0] === 'retired' || answer[0] === 'dropped')
      throw new NamespaceRetiredError(BACKEND, first.tenant_id, first.namespace);
    // Per row: 'new' alone (stored as sent, in the state the script decided by the same `now`),
    // or status, id, state, dueAt, createdAt of the message already stored.
    let at = 1;
    return rows.map((row) => {
      if (answer[at] === 'new') {
        at += 1;
        return {
          replayed: false,
          message: toStored(row, row.due_at.getTime() > now ? 'scheduled' : 'pending'),
        };
      }
      const [status, id, state, dueAt, createdAt] = answer.slice(at, at + 5) as string[];
      at += 5;
      const message = {
        ...toStored(row, state as MessageState),
        id: id!,
        dueAt: new Date(Number(dueAt)),
        createdAt: new Date(Number(createdAt)),
      };
      return { replayed: status === 'replayed', message };
    });
  }

  return {
    name: BACKEND,

    async append(rows, appendOptions) {
      if (rows.length === 0) return [];
      const revive = appendOptions?.revive === true;
      // One script call per (tenant, namespace): typically the whole call.
      const groups = new Map<string, number[]>();
      rows.forEach((row, i) => {
        const group = `${row.tenant_id}\u0000${row.namespace}`;
        const list = groups.get(group);
        if (list) list.push(i);
        else groups.set(group, [i]);
      });
      // A script sent and not answered may have run: BackendTimeoutError, never the fallback.
      return guardedStore(redis, 'append', async () => {
        if (groups.size === 1) return appendGroup(rows, revive);
        // Several namespaces: each group is atomic. So that a conflict writes nothing, every
        // messageId is checked first (a conflict racing in between still fails only its group).
        const stored = await Promise.all(
          rows.map((r) =>
            redis.hget(
              messageKey(nsKeys(prefix, r.tenant_id, r.namespace).base, r.message_id),
              'requestHash',
            ),
          ),
        );
        const conflicts = rows.filter((r, i) => stored[i] !== null && stored[i] !== r.request_hash);
        if (conflicts.length > 0) throw idempotencyConflict(conflicts.map((r) => r.message_id));
        const outcomes: WriteOutcome[] = new Array(rows.length);
        for (const indexes of groups.values()) {
          let answered: WriteOutcome[];
          try {
            answered = await appendGroup(
              indexes.map((i) => rows[i]!),
              revive,
            );
          } catch (err) {
            if (!(err instanceof NamespaceRetiredError)) throw err;
            // The groups appended before stay stored: say so (contract.ts), or their writer would
            // write them again elsewhere.
            throw new NamespaceRetiredError(err.backend, err.tenantId, err.namespace, [...outcomes]);
          }
          indexes.forEach((rowIndex, j) => {
            outcomes[rowIndex] = answered[j]!;
          });
        }
        return outcomes;
      });
    },

    async find(tenantId, namespace, messageId): Promise<StreamMessageView | undefined> {
      const { base } = nsKeys(prefix, tenantId, namespace);
      return guarded(redis, 'find', async () => {
        const [hash, history] = await Promise.all([
          redis.hgetall(messageKey(base, messageId)),
          redis.lrange(historyKey(base, messageId), 0, -1),
        ]);
        if (!hash?.['id']) return undefined;
        return {
          message: messageOf(hash),
          backend: BACKEND,
          ...viewFields(hash),
          history: historyOf(history),
        };
      });
    },

    async consume(deps) {
      consumerCount += 1;
      const name = consumerCount === 1 ? consumerName : `${consumerName}-${consumerCount}`;
      const consumer = await startConsumer(
        { redis, scripts, prefix, consumerName: name, batchSize, blockMs },
        deps,
      );
      consumers.add(consumer);
      return {
        async stop() {
          consumers.delete(consumer);
          await consumer.stop();
        },
      };
    },

    async lag() {
      return guarded(redis, 'lag', async () => {
        const bases = await redis.smembers(registryKey(prefix));
        const now = Date.now();
        let messages = 0;
        let oldest = now;
        await Promise.all(
          bases.map(async (base) => {
            const keys = keysOfBase(base);
            const [length, delayed, parked, first, earliest] = await Promise.all([
              redis.xlen(keys.stream),
              redis.zcard(keys.delayed),
              redis.get(keys.parked),
              redis.xrange(keys.stream, '-', '+', 'COUNT', '1'),
              redis.zrange(keys.delayed, 0, '0', 'WITHSCORES') as Promise<unknown[]>,
            ]);
            messages += length + delayed + Math.max(0, Number(parked ?? 0));
            const entry = first[0];
            if (entry) {
              const fields = fieldsOf(entry[1]);
              const due = Number(fields['d'] ?? Number(entry[0].split('-')[0]));
              if (due < oldest) oldest = due;
            }
            // [member, score] flat (RESP2 / legacy mapping) or as a pair (resp3 mapping).
            const score = Array.isArray(earliest[0]) ? earliest[0][1] : earliest[1];
            if (score !== undefined && Number(score) < oldest) oldest = Number(score);
          }),
        );
        return { messages, oldestMs: Math.max(0, now - oldest) };
      });
    },

    async ping() {
      await guarded(redis, 'ping', () => redis.ping());
    },

    async follow(tenantId, namespace, onMessage) {
      const keys = nsKeys(prefix, tenantId, namespace);
      await guarded(redis, 'follow', () => redis.ping());
      // XREAD (no group) from the newest entry on: it leaves the consumers' group alone.
      const reader = redis.duplicate();
      reader.on('error', () => {});
      let running = true;
      let last = '$';
      const reading = (async () => {
        while (running) {
          try {
            const reply = await reader.xread('BLOCK', 1000, 'STREAMS', keys.stream, last);
            for (const [, entries] of streamsOf(reply)) {
              for (const [entry, fields] of entries) {
                last = entry;
                const messageId = fields ? fieldsOf(fields)['m'] : undefined;
                if (!messageId) continue;
                const hash = await redis.hgetall(messageKey(keys.base, messageId));
                if (hash['id']) onMessage(messageOf(hash));
              }
            }
          } catch {
            if (running) await new Promise((resolve) => setTimeout(resolve, 500));
          }
        }
      })();
      return {
        async stop() {
          running = false;
          reader.disconnect();
          await reading;
        },
      };
    },

    async retire(tenantId, namespace, retireOptions) {
      const keys = nsKeys(prefix, tenantId, namespace);
      // One script: it closes the namespace, or not, at once; a signal aborted since only keeps
      // it on the list lag() walks (empty, it counts nothing) until the next retire.
      return guarded(redis, 'retire', async () => {
        const { stream, delayed, parked, retired, base } = keys;
        const done = await scripts.retire(
          stream,
          delayed,
          parked,
          retired,
          base,
          Date.now(),
          RETIRED_LEFTOVER_SECONDS,
        );
        if (Number(done) !== 1) return false;
        retireOptions?.signal?.throwIfAborted();
        // Off the list lag() walks (appended again on reopen).
        await redis.srem(registryKey(prefix), base);
        registered.delete(base);
        return true;
      });
    },

    async reopen(tenantId, namespace) {
      const keys = nsKeys(prefix, tenantId, namespace);
      await guarded(redis, 'reopen', async () => {
        await scripts.reopen(keys.stream, keys.delayed, keys.parked, keys.retired, keys.dropped, keys.base);
        await redis.sadd(registryKey(prefix), keys.base);
        registered.add(keys.base);
      });
    },

    async drop(tenantId, namespace, dropOptions) {
      const keys = nsKeys(prefix, tenantId, namespace);
      keyCache.delete(`${tenantId}/${namespace}`);
      registered.delete(keys.base);
      await guarded(redis, 'drop', async () => {
        if (dropOptions?.onlyRetired && (await redis.exists(keys.retired)) === 0) return;
        await dropKeys(redis, prefix, keys, dropOptions?.createdAt);
      });
    },

    async close() {
      const running = [...consumers];
      consumers.clear();
      await Promise.all(running.map((c) => c.stop()));
    },
  };
}
