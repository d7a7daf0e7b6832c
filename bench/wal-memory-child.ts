/**
 * Child process of part `memory` of `npm run bench:wal` (run by wal-memory.ts with --expose-gc and
 * an IPC channel): writes messages in batches of BENCH_BATCH_SIZE and delivers them to a no-op
 * handler in this same process, and at each checkpoint (every message so far written AND
 * delivered) forces a full GC and reports its resident memory over IPC.
 *
 * Env: BENCH_MEM_BACKEND (postgres | redis-streams | bullmq), BENCH_MEM_TENANT (the bench
 * tenant id), BENCH_MEM_CHECKPOINTS (comma-separated message counts, ascending).
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { withTenant } from '../src/platform/db/index.ts';
import { createInternalHandlers } from '../src/wal/delivery/internal-handlers.ts';
import { createWal } from '../src/wal/module.ts';
import { type MessageInput, toRows } from '../src/wal/write/prepare.ts';
import { BULLMQ_PREFIX, bullConnection, bullJobOptions } from './wal-bullmq.ts';
import { BATCH_SIZE, PAYLOAD, REDIS_URL, WORKER_CONCURRENCY, waitForCount } from './wal-common.ts';
import { internalTarget, openMercato } from './wal-mercato.ts';
import { MERCATO_REDIS_PREFIX, openRedisBackend, streamConsumer } from './wal-redis.ts';

export type MemoryReport =
  | { type: 'rss'; messages: number; rss: number; heapUsed: number; usage: NodeJS.MemoryUsage }
  | { type: 'error'; message: string };

const backendName = process.env['BENCH_MEM_BACKEND'] ?? 'postgres';
const tenantId = process.env['BENCH_MEM_TENANT'] ?? '';
const checkpoints = (process.env['BENCH_MEM_CHECKPOINTS'] ?? '1000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
/** Writes wait while more than this many messages are written but not yet delivered. */
const WINDOW = 20 * BATCH_SIZE;
const send = (report: MemoryReport) =>
  new Promise<void>((resolve) => process.send?.(report, () => resolve()));
const batchOf = (n: number): MessageInput[] => Array.from({ length: n }, () => ({ payload: PAYLOAD }));

let delivered = 0;
const closers: Array<() => Promise<unknown>> = [];

/** Sets up the backend; returns the function that writes n messages. */
async function setUp(): Promise<(n: number) => Promise<unknown>> {
  if (backendName === 'bullmq') {
    const queue = new Queue('memory', {
      connection: bullConnection,
      prefix: `${BULLMQ_PREFIX}:mem`,
      defaultJobOptions: bullJobOptions,
    });
    const worker = new Worker(
      'memory',
      async () => {
        delivered++;
      },
      { connection: bullConnection, prefix: `${BULLMQ_PREFIX}:mem`, concurrency: WORKER_CONCURRENCY },
    );
    closers.push(
      () => worker.close(),
      () => queue.close(),
    );
    return (n) => queue.addBulk(Array.from({ length: n }, () => ({ name: 'm', data: PAYLOAD })));
  }
  const m = await openMercato(tenantId);
  closers.push(() => m.close());
  const targets = [internalTarget('mem-noop')];
  const namespace = await m.namespace(`mem-${backendName}`, {
    backend: backendName === 'redis-streams' ? 'redis-streams' : 'postgres',
    targets,
    consumerConcurrency: WORKER_CONCURRENCY,
  });
  if (backendName === 'postgres') {
    const wal = await createWal(m.ctx);
    wal.registerHandler('mem-noop', async () => void delivered++, { inbox: false });
    await wal.start?.();
    closers.unshift(async () => wal.stop?.());
    // This server runs with autovacuum off: vacuum the queue table as autovacuum would (every
    // 50,000 messages, one at a time, beside the load), or dead rows pile up without end.
    let vacuuming: Promise<unknown> | undefined;
    let sinceVacuum = 0;
    closers.unshift(async () => vacuuming);
    return (n) => {
      sinceVacuum += n;
      if (sinceVacuum >= 50_000 && !vacuuming) {
        sinceVacuum = 0;
        vacuuming = sql`vacuum analyze wal.messages, wal.attempts`
          .execute(m.ctx.db.kysely)
          .finally(() => (vacuuming = undefined));
      }
      return withTenant(m.db, tenantId, (trx) => wal.write(trx, tenantId, namespace, batchOf(n)));
    };
  }
  if (backendName !== 'redis-streams') throw new Error(`unknown BENCH_MEM_BACKEND ${backendName}`);
  const redis = new Redis(REDIS_URL);
  const backend = await openRedisBackend(redis, `${MERCATO_REDIS_PREFIX}:mem`);
  const handlers = createInternalHandlers(m.db);
  handlers.register('mem-noop', async () => void delivered++, { inbox: false });
  const consumer = await streamConsumer(m, backend, handlers, namespace);
  closers.unshift(
    () => consumer.stop(),
    () => backend.close(),
    async () => redis.disconnect(),
  );
  return (n) => backend.append(toRows(tenantId, namespace, 'redis-streams', batchOf(n)));
}

try {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  const write = await setUp();
  let written = 0;
  for (const checkpoint of checkpoints) {
    while (written < checkpoint) {
      await waitForCount('memory window', () => delivered, written - WINDOW);
      const n = Math.min(BATCH_SIZE, checkpoint - written);
      await write(n);
      written += n;
    }
    if (!(await waitForCount(`memory ${backendName}`, () => delivered, written)))
      throw new Error(`only ${delivered} of ${written} delivered (stalled)`);
    // Let the last acks/completions land, then collect everything collectable.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const usage = process.memoryUsage();
    await send({ type: 'rss', messages: checkpoint, rss: usage.rss, heapUsed: usage.heapUsed, usage });
  }
} catch (error) {
  await send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  process.exitCode = 1;
} finally {
  for (const close of closers) await close().catch(() => {});
  process.disconnect?.();
  // Whatever a client left open (agents, timers) must not keep the parent waiting.
  process.exit();
}
