/**
 * BullMQ's side of part `redis` of `npm run bench:wal`, on the same Redis as Mercato's Redis
 * Streams backend, same shapes: `add` at BENCH_CONCURRENCY callers, `addBulk` of BENCH_BATCH_SIZE,
 * drain of a backlog by a no-op Worker, end-to-end latency at a fixed rate, lateness of delayed jobs.
 * Every job has `removeOnComplete: true, removeOnFail: true`: completed jobs are deleted at once
 * (as Mercato's Redis backend keeps only the delivered state), so Redis memory stays flat.
 */
import { readFile } from 'node:fs/promises';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
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

export const BULLMQ_PREFIX = `${REDIS_PREFIX}:bullmq`;
const url = new URL(REDIS_URL);
/** BullMQ's connection options (its Workers need maxRetriesPerRequest: null). */
export const bullConnection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  maxRetriesPerRequest: null,
};
export const bullJobOptions = { removeOnComplete: true, removeOnFail: true } as const;

export async function bullmqVersion(): Promise<string> {
  const pkg = new URL('../node_modules/bullmq/package.json', import.meta.url);
  return (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
}

export async function runBullmq(): Promise<void> {
  facts['bullmqVersion'] = await bullmqVersion();
  const admin = new Redis(REDIS_URL);
  await deleteRedisKeys(admin, BULLMQ_PREFIX);
  const queues: Queue[] = [];
  const workers: Worker[] = [];
  const queue = (name: string) => {
    const q = new Queue(name, {
      connection: bullConnection,
      prefix: BULLMQ_PREFIX,
      defaultJobOptions: bullJobOptions,
    });
    queues.push(q);
    return q;
  };
  const worker = (name: string, handler: (job: Job) => void) => {
    const w = new Worker(name, async (job) => handler(job), {
      connection: bullConnection,
      prefix: BULLMQ_PREFIX,
      concurrency: WORKER_CONCURRENCY,
    });
    w.on('error', (err) => console.error('bullmq worker error', err));
    workers.push(w);
    return w;
  };
  try {
    // 1. Single adds, CONCURRENCY callers.
    const single = queue('single');
    await closedLoop(WARMUP, CONCURRENCY, () => single.add('m', PAYLOAD));
    results['bullSingle'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, () => single.add('m', PAYLOAD));

    // 2. addBulk of BATCH_SIZE, one caller.
    const batchQueue = queue('batch');
    const bulk = () => Array.from({ length: BATCH_SIZE }, () => ({ name: 'm', data: PAYLOAD }));
    await batchQueue.addBulk(bulk());
    results['bullBatch'] = (await closedLoop(BATCHES, 1, () => batchQueue.addBulk(bulk()))) * BATCH_SIZE;
    await single.obliterate({ force: true });
    await batchQueue.obliterate({ force: true });
    console.log('bullmq writes', results);

    // 3. Drain of a backlog of DELIVER by a no-op Worker, timed until the last 'completed'.
    const deliver = queue('deliver');
    for (let done = 0; done < DELIVER; done += BATCH_SIZE) {
      await deliver.addBulk(bulk().slice(0, Math.min(BATCH_SIZE, DELIVER - done)));
    }
    let completed = 0;
    const started = performance.now();
    const drainer = worker('deliver', () => {});
    drainer.on('completed', () => {
      completed++;
    });
    const ok = await waitForCount('BullMQ deliver', () => completed, DELIVER);
    results['bullDeliver'] = DELIVER / ((performance.now() - started) / 1000);
    if (!ok) notes.push(`BullMQ completed only ${completed} of ${DELIVER} (stalled).`);
    await drainer.close();

    // 4. End-to-end latency (add to handler start) at LATENCY_RATE adds/s.
    const latency = queue('latency');
    const latencies: number[] = [];
    worker('latency', (job) => {
      latencies.push(Date.now() - job.timestamp);
    });
    await paced(LATENCY, LATENCY_RATE, () => latency.add('m', PAYLOAD));
    if (!(await waitForCount('BullMQ latency', () => latencies.length, LATENCY)))
      notes.push(`BullMQ latency: ${latencies.length} of ${LATENCY} jobs ran.`);
    recordPercentiles('bullLatency', latencies);

    // 5. Lateness of delayed jobs (1,000–3,000 ms): handler start minus (timestamp + delay).
    const delayed = queue('delayed');
    const lateness: number[] = [];
    worker('delayed', (job) => {
      lateness.push(Date.now() - (job.timestamp + (job.opts.delay ?? 0)));
    });
    const delays = Array.from({ length: DELAYED }, (_, i) => 1000 + ((i * 7919) % 2001));
    for (let done = 0; done < DELAYED; done += BATCH_SIZE) {
      await delayed.addBulk(
        delays.slice(done, done + BATCH_SIZE).map((delay) => ({ name: 'm', data: PAYLOAD, opts: { delay } })),
      );
    }
    await waitForCount('BullMQ delayed', () => lateness.length, DELAYED);
    recordPercentiles('bullLate', lateness);
    if (lateness.length < DELAYED) notes.push(`BullMQ ran ${lateness.length} of ${DELAYED} delayed jobs.`);
    console.log('bullmq', results);
  } finally {
    await Promise.allSettled(workers.map((w) => w.close(true)));
    await Promise.allSettled(queues.map((q) => q.close()));
    await deleteRedisKeys(admin, BULLMQ_PREFIX).catch(() => {});
    admin.disconnect();
  }
}
