/**
 * `npm run bench:wal`: the WAL's backends side by side with their peers, in one run on this
 * machine, same 1 KiB payload, writing the figures and the machine into bench/README.md:
 * - pg (wal-pg.ts): PostgreSQL backend vs pg-boss on the same PostgreSQL: single writes (outbox,
 *   group committer) vs `send`, batches vs `insert`, delivery to a no-op handler (without and with
 *   the inbox) vs `work`, end-to-end latency, lateness of delayed messages;
 * - http (wal-http.ts): `POST /api/v1/wal/write` against the real server (wrk, else autocannon),
 *   to a namespace without targets, then to one with an HTTP target the server delivers to
 *   meanwhile, then the same load on a floor server: Fastify and one group-committed INSERT
 *   (wal-http-floor.ts);
 * - redis (wal-redis.ts, wal-bullmq.ts): Redis Streams backend vs BullMQ on the same Redis;
 * - memory (wal-memory.ts): resident memory after 100 thousand and 1 million messages.
 *
 * Knobs: BENCH_ONLY (comma-separated parts, default pg,http,redis,memory), BENCH_SCALE
 * (multiplies every count, e.g. 0.05 for a quick run), BENCH_SINGLE_TOTAL (20000), BENCH_WARMUP
 * (5000 single writes before the timed ones, every side),
 * BENCH_CONCURRENCY (64), BENCH_BATCHES (20 batches of BENCH_BATCH_SIZE=1000), BENCH_DELIVER
 * (20000), BENCH_LATENCY (5000 messages at BENCH_LATENCY_RATE=500/s), BENCH_DELAYED (2000),
 * BENCH_WORKER_CONCURRENCY (8), BENCH_MEMORY_SMALL (100000), BENCH_MEMORY_LARGE (1000000),
 * BENCH_MEMORY_BACKENDS (postgres,redis-streams,bullmq), BENCH_DURATION (HTTP seconds, 10),
 * MERCATO_WORKERS (1), BENCH_DATABASE_URL (default local postgres), BENCH_REDIS_URL (default
 * redis://127.0.0.1:6379), BENCH_REDIS_PREFIX (mercato-bench; every key under it is deleted before
 * and after). bench/README.md is rewritten only by a full run (BENCH_SCALE=1, every part);
 * BENCH_WRITE_README=1 forces it, BENCH_WRITE_README=0 prevents it.
 */
import { chosenParts, writeSectionIf } from './results-file.ts';
import { bullmqVersion, runBullmq } from './wal-bullmq.ts';
import { adminUrl, facts, notes, results, runPart, scale, sqlAt } from './wal-common.ts';
import { type HttpRow, runHttp, runHttpFloor } from './wal-http.ts';
import { MEMORY_BACKENDS, runMemory } from './wal-memory.ts';
import { dropMercatoDatabase, setupMercatoDatabase } from './wal-mercato.ts';
import { runPg } from './wal-pg.ts';
import { describeRedis, runRedis } from './wal-redis.ts';
import { walReport } from './wal-report.ts';

const ALL = ['pg', 'http', 'redis', 'memory'];
const only = chosenParts(ALL);
const parts = ALL.filter((part) => only.includes(part));

facts['pgVersion'] = String((await sqlAt(adminUrl, 'show server_version'))[0]?.['server_version']).split(
  ' ',
)[0]!;
facts['syncCommit'] = String((await sqlAt(adminUrl, 'show synchronous_commit'))[0]?.['synchronous_commit']);
const failed: string[] = [];
let http: HttpRow | undefined;
let tenantId = '';
/** Runs a part and remembers it when it failed. */
const part = async (name: string, run: () => Promise<void>) => {
  if (!(await runPart(name, run))) failed.push(name);
};
await part('setup', async () => {
  tenantId = await setupMercatoDatabase();
});
if (failed.length > 0) {
  console.error('could not create the bench database; nothing else can run');
  process.exit(1);
}
try {
  if (parts.includes('pg')) await part('pg', () => runPg(tenantId));
  if (parts.includes('http'))
    await part('http', async () => {
      http = await runHttp();
      const floor = await runHttpFloor();
      results['httpFloorRps'] = floor.rps;
      results['httpFloorP50'] = floor.p50;
      results['httpFloorP99'] = floor.p99;
    });
  if (parts.includes('redis') || parts.includes('memory'))
    await part('redis (server check)', async () => {
      await describeRedis();
      facts['bullmqVersion'] = await bullmqVersion();
    });
  const redisUp = !failed.includes('redis (server check)');
  if (parts.includes('redis') && redisUp) {
    await part('redis (BullMQ)', runBullmq);
    await part('redis (Mercato Redis Streams)', () => runRedis(tenantId));
  } else if (parts.includes('redis')) {
    notes.push('The redis part was skipped: Redis cannot be reached.');
  }
  const memoryBackends = MEMORY_BACKENDS.filter((b) => redisUp || b === 'postgres');
  if (parts.includes('memory') && memoryBackends.length > 0)
    await part('memory', () => runMemory(tenantId, memoryBackends));
} finally {
  await dropMercatoDatabase().catch(() => {});
}

const { body, summary } = walReport(parts, http);
const full = scale === 1 && parts.length === ALL.length;
await writeSectionIf('wal', body, full);
console.log(`\n${summary}`);
if (notes.length > 0) console.log(`\nNotes:\n${notes.join('\n')}`);
if (failed.length > 0) {
  console.error(`\nFAILED parts: ${failed.join(', ')} (see above; their figures show as "–")`);
  process.exit(1);
}
process.exit(0);
