/**
 * Mercato's side of part `redis` of `npm run bench:wal`: the WAL's Redis Streams backend, same
 * shapes as BullMQ (wal-bullmq.ts) on the same Redis. Single writes are concurrent
 * `backend.append([row])`, batches `append` of BENCH_BATCH_SIZE rows, both after validation and
 * toRows like the HTTP write path; delivery goes through `consume` and the WAL's stream delivery
 * (createStreamDelivery) to an internal target: a no-op `{ inbox: false }` handler, and, as an
 * extra line, a no-op handler with the inbox (one PostgreSQL transaction per message).
 */
import { Redis } from 'ioredis';
import pino from 'pino';
import { createRedisClient } from '../src/platform/redis-client.ts';
import type { Decision, StreamBackend, StreamConsumer } from '../src/wal/backends/stream/contract.ts';
import { createInternalHandlers } from '../src/wal/delivery/internal-handlers.ts';
import { createStreamDelivery } from '../src/wal/delivery/stream-delivery.ts';
import type { Namespace } from '../src/wal/namespaces/index.ts';
import { createTargets } from '../src/wal/targets/index.ts';
import type { Delivery } from '../src/wal/targets/target-result.ts';
import { type MessageInput, toRows, validateMessages } from '../src/wal/write/prepare.ts';
import {
  BATCH_SIZE,
  BATCHES,
  CONCURRENCY,
  closedLoop,
  DELAYED,
  DELIVER,
  deleteRedisKeys,
  facts,
  LATENCY,
  LATENCY_RATE,
  notes,
  PAYLOAD,
  paced,
  REDIS_PREFIX,
  REDIS_URL,
  recordPercentiles,
  results,
  SINGLE_TOTAL,
  WARMUP,
  WORKER_CONCURRENCY,
  waitForCount,
} from './wal-common.ts';
import { internalTarget, type MercatoBench, openMercato } from './wal-mercato.ts';

export const MERCATO_REDIS_PREFIX = `${REDIS_PREFIX}:mercato`;

/** Records the Redis server's version and persistence settings (the durability both sides get); throws when Redis is unreachable. */
export async function describeRedis(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 3000, retryStrategy: () => null });
  try {
    await redis.connect().catch((error: Error) => {
      throw new Error(`Redis at ${REDIS_URL} cannot be reached (${error.message})`);
    });
    const info = await redis.info('server');
    facts['redisVersion'] = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const config = async (name: string) => ((await redis.config('GET', name)) as string[])[1] ?? '?';
    facts['redisAppendonly'] = await config('appendonly');
    facts['redisAppendfsync'] = await config('appendfsync');
    facts['redisSave'] = (await config('save')) || '(none)';
  } finally {
    redis.disconnect();
  }
}

/** The Redis Streams backend on `redis` (imported lazily, so a missing or broken backend fails only this part). */
export async function openRedisBackend(redis: Redis, prefix = MERCATO_REDIS_PREFIX): Promise<StreamBackend> {
  const { createRedisStreamsBackend } = await import('../src/wal/backends/redis-streams/index.ts');
  return createRedisStreamsBackend(redis, { prefix });
}

/**
 * A consumer for one namespace of `backend` delivering through the WAL's stream delivery with
 * `handlers`; `onAck` runs after every ack decision.
 */
export function streamConsumer(
  m: MercatoBench,
  backend: StreamBackend,
  handlers: ReturnType<typeof createInternalHandlers>,
  namespace: Namespace,
  onAck: () => void = () => {},
): Promise<StreamConsumer> {
  const targets = createTargets({ ctx: m.ctx, db: m.db });
  const deliver = createStreamDelivery(
    { db: m.db, deliver: targets.deliver, internal: handlers.dispatch, logger: m.ctx.logger },
    backend.name,
  );
  return backend.consume({
    logger: m.ctx.logger,
    namespaces: async () => [namespace],
    onNamespacesChanged: () => () => {},
    deliver: async (ns, message, history): Promise<Decision> => {
      const decision = await deliver(ns, message, history);
      if (decision.action === 'ack') onAck();
      else console.error('redis-streams delivery not acked', decision);
      return decision;
    },
    leaseMs: m.ctx.config.walLeaseSeconds * 1000,
  });
}

export async function runRedis(tenantId: string): Promise<void> {
  // Mercato's own client, as the server makes it (auto-pipelining on).
  const redis = await createRedisClient(REDIS_URL, pino({ level: 'silent' }));
  await redis.connect();
  await deleteRedisKeys(redis, MERCATO_REDIS_PREFIX);
  const m = await openMercato(tenantId);
  const consumers: StreamConsumer[] = [];
  let backend: StreamBackend | undefined;
  try {
    backend = await openRedisBackend(redis);
    const ns: Record<string, Namespace> = {};
    for (const [name, handler] of [
      ['redis-single', undefined],
      ['redis-batch', undefined],
      ['redis-deliver-noop', 'noop-fast'],
      ['redis-deliver-inbox', 'noop'],
      ['redis-latency', 'noop-fast'],
      ['redis-delayed', 'noop-fast'],
    ] as const) {
      ns[name] = await m.namespace(name, {
        backend: 'redis-streams',
        targets: handler ? [internalTarget(handler)] : [],
        consumerConcurrency: WORKER_CONCURRENCY,
      });
    }
    const latencies: number[] = [];
    const lateness: number[] = [];
    const handlers = createInternalHandlers(m.db);
    handlers.register('noop', async () => {});
    handlers.register(
      'noop-fast',
      async (_trx, delivery: Delivery) => {
        const now = Date.now();
        if (delivery.namespace === 'redis-latency') latencies.push(now - delivery.createdAt.getTime());
        if (delivery.namespace === 'redis-delayed' && delivery.dueAt)
          lateness.push(now - delivery.dueAt.getTime());
      },
      { inbox: false },
    );
    const b = backend;
    const rowsOf = (name: string, messages: MessageInput[]) => {
      const namespace = ns[name]!;
      validateMessages(namespace, messages, (i) => `/messages/${i}`);
      return toRows(tenantId, namespace, 'redis-streams', messages);
    };
    const message = (): MessageInput => ({ payload: PAYLOAD });
    const batch = (n = BATCH_SIZE) => Array.from({ length: n }, message);

    // 1. Single appends, CONCURRENCY callers.
    const single = () => b.append(rowsOf('redis-single', [message()]));
    await closedLoop(WARMUP, CONCURRENCY, single);
    results['redisSingle'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, single);

    // 2. Appends of BATCH_SIZE rows, one caller.
    await b.append(rowsOf('redis-batch', batch()));
    results['redisBatch'] =
      (await closedLoop(BATCHES, 1, () => b.append(rowsOf('redis-batch', batch())))) * BATCH_SIZE;
    console.log('redis-streams writes', results);

    // 3. Drain of a backlog of DELIVER, no-op handler without then with the inbox.
    for (const [name, key] of [
      ['redis-deliver-noop', 'redisDeliver'],
      ['redis-deliver-inbox', 'redisDeliverInbox'],
    ] as const) {
      for (let done = 0; done < DELIVER; done += BATCH_SIZE) {
        await b.append(rowsOf(name, batch(Math.min(BATCH_SIZE, DELIVER - done))));
      }
      let acked = 0;
      const started = performance.now();
      const consumer = await streamConsumer(m, b, handlers, ns[name]!, () => acked++);
      const ok = await waitForCount(`Redis Streams ${name}`, () => acked, DELIVER);
      results[key] = DELIVER / ((performance.now() - started) / 1000);
      await consumer.stop();
      if (!ok) notes.push(`Redis Streams (${name}) acked only ${acked} of ${DELIVER} (stalled).`);
    }
    console.log('redis-streams deliver', results);

    // 4. End-to-end latency (write to handler start) at LATENCY_RATE single appends/s.
    consumers.push(await streamConsumer(m, b, handlers, ns['redis-latency']!));
    await paced(LATENCY, LATENCY_RATE, () => b.append(rowsOf('redis-latency', [message()])));
    if (!(await waitForCount('Redis Streams latency', () => latencies.length, LATENCY)))
      notes.push(`Redis Streams latency: ${latencies.length} of ${LATENCY} delivered.`);
    recordPercentiles('redisLatency', latencies);

    // 5. Lateness of delayed messages (1,000–3,000 ms): handler start minus due time.
    consumers.push(await streamConsumer(m, b, handlers, ns['redis-delayed']!));
    const delays = Array.from({ length: DELAYED }, (_, i) => 1000 + ((i * 7919) % 2001));
    for (let done = 0; done < DELAYED; done += BATCH_SIZE) {
      const slice = delays.slice(done, done + BATCH_SIZE);
      await b.append(
        rowsOf(
          'redis-delayed',
          slice.map((delay) => ({ payload: PAYLOAD, lifecycle: { delay } })),
        ),
      );
    }
    await waitForCount('Redis Streams delayed', () => lateness.length, DELAYED);
    recordPercentiles('redisLate', lateness);
    if (lateness.length < DELAYED)
      notes.push(`Redis Streams delivered ${lateness.length} of ${DELAYED} delayed.`);
    console.log('redis-streams', results);
  } finally {
    await Promise.allSettled(consumers.map((c) => c.stop()));
    await backend?.close().catch(() => {});
    await m.close();
    await deleteRedisKeys(redis, MERCATO_REDIS_PREFIX).catch(() => {});
    redis.disconnect();
  }
}
