/**
 * `npm run bench:exceptions` (issue 13): the exception collector on PostgreSQL, writing the figures
 * and the machine into bench/README.md:
 * - capture: inbound events written in batches to the tenant's `interface-exceptions` through
 *   `POST /api/v1/wal/write/batch`, captured by the collector through the WAL's internal target,
 *   counted when queryable (bench/exceptions/capture.ts);
 * - then the table is filled to BENCH_ROWS (1,000,000) in SQL (bench/exceptions/seed.ts), and the
 *   list, search and summary reads run at 16 connections (bench/exceptions/queries.ts).
 * Mercato runs as `mercato start` in a child process on database `mercato_bench_exceptions`, made
 * anew per run and dropped at the end unless BENCH_KEEP_DB=1.
 *
 * Knobs: BENCH_ONLY (capture,list,search,summary), BENCH_CAPTURE_EVENTS (100000), BENCH_CAPTURE_BATCH
 * (500), BENCH_CAPTURE_WRITERS (8), BENCH_REPEAT_EVERY (10: one event in ten repeats a transaction id),
 * BENCH_ROWS (1000000), BENCH_QUERY_CONNECTIONS (16), BENCH_SEARCH_SORT (relevance: the ranked search),
 * BENCH_DURATION (10), BENCH_WARMUP (2),
 * MERCATO_WORKERS (1), BENCH_DATABASE_URL, BENCH_DB_NAME (mercato_bench_exceptions), BENCH_REUSE_DB=1 (the reads only, on the database and tenant a
 * BENCH_KEEP_DB=1 run left: no new tenant, no new seed), BENCH_WAL_MAX_CONCURRENCY (the server's MERCATO_WAL_MAX_CONCURRENCY)
 * with BENCH_CAPTURE_CONCURRENCY (interface-exceptions' consumerConcurrency, set by the tenant's admin). Only a full run (every part, 1,000,000 rows, 100,000
 * events) rewrites bench/README.md; BENCH_WRITE_README=1/0 overrides.
 * A smoke run (about a minute): `BENCH_ROWS=20000 BENCH_CAPTURE_EVENTS=5000 BENCH_DURATION=2 npm run bench:exceptions`.
 */
import { availableParallelism } from 'node:os';
import { apiAt, login } from './commerce/api.ts';
import {
  ADMIN_EMAIL,
  createBenchTenant,
  createDatabase,
  dropDatabase,
  PASSWORD,
  type Server,
  serverVersion,
  sql,
  startMercato,
  TENANT,
  useDatabase,
  WORKERS,
} from './commerce/setup.ts';
import { runCapture } from './exceptions/capture.ts';
import { QUERY_CONNECTIONS, runQueries } from './exceptions/queries.ts';
import { type Figures, report } from './exceptions/report.ts';
import { seedExceptions } from './exceptions/seed.ts';
import { describeMachine } from './machine.ts';
import { chosenParts, writeSectionIf } from './results-file.ts';

const env = process.env;
const ALL = ['capture', 'list', 'search', 'summary'];
const parts = chosenParts(ALL);
const EVENTS = Number(env['BENCH_CAPTURE_EVENTS'] ?? 100_000);
const BATCH = Number(env['BENCH_CAPTURE_BATCH'] ?? 500);
const WRITERS = Number(env['BENCH_CAPTURE_WRITERS'] ?? 8);
const REPEAT_EVERY = Number(env['BENCH_REPEAT_EVERY'] ?? 10);
const ROWS = Number(env['BENCH_ROWS'] ?? 1_000_000);
const REUSE = env['BENCH_REUSE_DB'] === '1';

/** The bench tenant of an earlier BENCH_KEEP_DB=1 run, signed in as its admin. */
async function reuseBenchTenant(base: string) {
  const [tenant] = await sql<{ id: string }>('select id from identity.tenants where slug = $1', [TENANT]);
  if (!tenant)
    throw new Error('BENCH_REUSE_DB=1: no bench tenant in the database (run once with BENCH_KEEP_DB=1)');
  const api = apiAt(base);
  api.token = await login(api, TENANT, ADMIN_EMAIL, PASSWORD);
  return { api, tenantId: tenant.id };
}

useDatabase(env['BENCH_DB_NAME'] ?? 'mercato_bench_exceptions');
const figures: Figures = {
  date: new Date().toISOString().slice(0, 10),
  machine: describeMachine([`nproc ${availableParallelism()}`]),
  pgVersion: REUSE ? await serverVersion() : await createDatabase(),
  workers: WORKERS,
  rows: ROWS,
  connections: QUERY_CONNECTIONS,
  notes: [],
};
let server: Server | undefined;
let failed = false;
try {
  server = await startMercato(
    env['BENCH_WAL_MAX_CONCURRENCY'] ? { MERCATO_WAL_MAX_CONCURRENCY: env['BENCH_WAL_MAX_CONCURRENCY'] } : {},
  );
  const { api, tenantId } = REUSE
    ? await reuseBenchTenant(server.base)
    : await createBenchTenant(server.base);
  if (parts.includes('capture') && !REUSE) {
    if (env['BENCH_CAPTURE_CONCURRENCY']) {
      await api.must('PUT', '/api/v1/wal/namespaces/interface-exceptions', {
        consumerConcurrency: Number(env['BENCH_CAPTURE_CONCURRENCY']),
      });
    }
    const key = await api.must<{ key: string }>('POST', '/api/v1/api-keys', {
      name: `bench-integrations-${Date.now()}`,
      permissions: ['wal:write'],
      namespaces: ['interface-exceptions'],
    });
    figures.capture = await runCapture({
      base: server.base,
      apiKey: key.key,
      tenantId,
      events: EVENTS,
      batch: BATCH,
      writers: WRITERS,
      repeatEvery: REPEAT_EVERY,
    });
  }
  const reads = parts.filter((p) => p !== 'capture');
  if (reads.length > 0) {
    const seeded = await seedExceptions(tenantId, ROWS);
    figures.seedSeconds = seeded.seconds;
    Object.assign(figures, await runQueries(server.base, api.token!, reads));
  }
} catch (error) {
  failed = true;
  figures.notes.push(
    `The run FAILED: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
  );
  console.error(error);
} finally {
  await server?.stop();
  if (env['BENCH_KEEP_DB'] !== '1' && !REUSE) await dropDatabase();
}
const text = report(figures);
console.log(`\n${text}`);
const full =
  !failed &&
  !REUSE &&
  !env['BENCH_SEARCH_SORT'] &&
  parts.length === ALL.length &&
  ROWS >= 1_000_000 &&
  EVENTS >= 100_000;
await writeSectionIf('exceptions', text, full);
process.exit(failed ? 1 : 0);
