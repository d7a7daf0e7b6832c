/**
 * `npm run bench:wal`: the WAL's PostgreSQL backend side by side with pg-boss on the same
 * PostgreSQL, in one run: durable single writes (outbox without group commit, group committer,
 * pg-boss send), batches of 1,000 (outbox vs pg-boss insert), end-to-end delivery to a no-op
 * handler (delivery engine vs pg-boss work), lateness of delayed messages, and HTTP single writes
 * against the real server (autocannon). Writes the figures and the machine into bench/README.md.
 *
 * Knobs: BENCH_SCALE (multiplies every count, e.g. 0.1 for a quick run), BENCH_SINGLE_TOTAL
 * (20000), BENCH_CONCURRENCY (64), BENCH_BATCHES (20 batches of BENCH_BATCH_SIZE=1000),
 * BENCH_DELIVER (20000), BENCH_DELAYED (2000), BENCH_DURATION (HTTP seconds, 10),
 * MERCATO_WORKERS (1), BENCH_DATABASE_URL (default local postgres).
 */
import { readFile } from 'node:fs/promises';
import autocannon from 'autocannon';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { runMercato } from '../src/cli/mercato-process.ts';
import { createTenant } from '../src/identity/tenants/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrate, withTenant } from '../src/platform/db/index.ts';
import { closeContext, createContext } from '../src/platform/runtime.ts';
import { createGroupCommitter } from '../src/wal/backends/postgres/group-commit.ts';
import { createWal } from '../src/wal/module.ts';
import { createNamespace, type Namespace } from '../src/wal/namespaces/index.ts';
import type { WalTables } from '../src/wal/tables.ts';
import { type MessageInput, toRows, validateMessages } from '../src/wal/write/prepare.ts';
import { describeMachine } from './machine.ts';
import { writeSection } from './results-file.ts';

const env = process.env;
const scale = Number(env['BENCH_SCALE'] ?? 1);
const count = (name: string, fallback: number) =>
  Math.max(1, Math.round(Number(env[name] ?? fallback) * scale));
const SINGLE_TOTAL = count('BENCH_SINGLE_TOTAL', 20_000);
const CONCURRENCY = Number(env['BENCH_CONCURRENCY'] ?? 64);
const BATCH_SIZE = Number(env['BENCH_BATCH_SIZE'] ?? 1000);
const BATCHES = count('BENCH_BATCHES', 20);
const DELIVER = count('BENCH_DELIVER', 20_000);
const DELAYED = count('BENCH_DELAYED', 2_000);
const DURATION = Math.max(2, Math.round(Number(env['BENCH_DURATION'] ?? 10) * Math.min(1, scale)));
const WORKERS = env['MERCATO_WORKERS'] ?? '1';
const adminUrl = env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MERCATO_DB = 'mercato_bench_wal';
const BOSS_DB = 'pgboss_bench';
const urlOf = (db: string) => Object.assign(new URL(adminUrl), { pathname: `/${db}` }).toString();
const PASSWORD = 'bench-password-1234';
const ADMIN_EMAIL = 'admin@bench.test';

/** A JSON payload of exactly 1 KiB once serialized. */
const PAYLOAD = (() => {
  const base = { kind: 'bench', data: '' };
  const pad = 1024 - JSON.stringify(base).length;
  return { kind: 'bench', data: 'x'.repeat(pad) };
})();

async function sqlAt(url: string, text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

for (const db of [MERCATO_DB, BOSS_DB]) {
  await sqlAt(adminUrl, `drop database if exists ${db} with (force)`);
  await sqlAt(adminUrl, `create database ${db}`);
}
const pgVersion = String((await sqlAt(adminUrl, 'show server_version'))[0]?.['server_version']).split(' ')[0];
const syncCommit = String((await sqlAt(adminUrl, 'show synchronous_commit'))[0]?.['synchronous_commit']);
const bossVersion = (
  JSON.parse(await readFile(new URL('../node_modules/pg-boss/package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** Runs `total` calls of `op` with `callers` concurrent callers, each awaiting one at a time; returns calls/s. */
async function closedLoop(
  total: number,
  callers: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(callers, total) }, async () => {
      while (next < total) {
        const i = next++;
        await op(i);
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

const round = (n: number) => Math.round(n);
const results: Record<string, number> = {};
const notes: string[] = [];

// ---------------------------------------------------------------- Mercato, in process
const config = loadConfig({ DATABASE_URL: urlOf(MERCATO_DB), LOG_LEVEL: 'warn', MERCATO_DEMO: 'false' });
const ctx = await createContext(config);
await migrate(ctx.db);
const db = ctx.db.kysely as Kysely<WalTables>;
const { tenant } = await createTenant(ctx.db.kysely as never, {
  slug: 'bench',
  name: 'Bench',
  adminEmail: ADMIN_EMAIL,
  adminPassword: PASSWORD,
});
const tenantId = tenant.id;
const change = { tenantId, actor: 'bench' };
const noopTarget = { type: 'internal', handler: 'noop', name: 'noop', enabled: true };
const namespaces: Record<string, Namespace> = {};
for (const [name, targets] of [
  ['bench-single', []],
  ['bench-batch', []],
  ['bench-deliver', [noopTarget]],
  ['bench-delayed', [noopTarget]],
] as const) {
  namespaces[name] = await withTenant(db, tenantId, (trx) =>
    createNamespace(trx, change, name, { targets: [...targets], maxDelayMs: 60_000 }),
  );
}
const wal = await createWal(ctx);
wal.registerHandler('noop', async () => {});
const message = (): MessageInput => ({ payload: PAYLOAD });
const outbox = (ns: Namespace, messages: MessageInput[]) =>
  withTenant(db, tenantId, (trx) => wal.write(trx, tenantId, ns, messages));

// pg-boss on its own database of the same server, same pool size as Mercato's.
const boss = new PgBoss({ connectionString: urlOf(BOSS_DB), max: config.dbPoolSize });
boss.on('error', (err) => console.error('pg-boss error', err));
await boss.start();
for (const q of ['single', 'batch', 'deliver', 'delayed']) await boss.createQueue(q);

try {
  // 1. Durable single writes, N concurrent callers.
  const warm = Math.min(1000, SINGLE_TOTAL);
  await closedLoop(warm, CONCURRENCY, () => outbox(namespaces['bench-single']!, [message()]));
  results['mercatoSingleNoGroup'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, () =>
    outbox(namespaces['bench-single']!, [message()]),
  );
  const committer = createGroupCommitter(db);
  const groupWrite = () => {
    const ns = namespaces['bench-single']!;
    const messages = [message()];
    validateMessages(ns, messages, (i) => `/messages/${i}`);
    return committer.submit(toRows(tenantId, ns, 'postgres', messages));
  };
  await closedLoop(warm, CONCURRENCY, groupWrite);
  const before = committer.stats();
  results['mercatoSingleGroup'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, groupWrite);
  const after = committer.stats();
  results['groupRowsPerFlush'] = (after.rows - before.rows) / Math.max(1, after.flushes - before.flushes);
  await committer.close();
  await closedLoop(warm, CONCURRENCY, () => boss.send('single', PAYLOAD));
  results['bossSend'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, () => boss.send('single', PAYLOAD));
  console.log('single', results);

  // 2. Batches of BATCH_SIZE, one caller, one transaction each.
  const batch = () => Array.from({ length: BATCH_SIZE }, message);
  const bossBatch = Array.from({ length: BATCH_SIZE }, () => ({ data: PAYLOAD }));
  await outbox(namespaces['bench-batch']!, batch());
  results['mercatoBatch'] =
    (await closedLoop(BATCHES, 1, () => outbox(namespaces['bench-batch']!, batch()))) * BATCH_SIZE;
  await boss.insert('batch', bossBatch);
  results['bossBatch'] = (await closedLoop(BATCHES, 1, () => boss.insert('batch', bossBatch))) * BATCH_SIZE;
  console.log('batch', results);

  // 3. End-to-end delivery to a no-op handler: write DELIVER first, then start the consumer.
  await sqlAt(urlOf(MERCATO_DB), 'truncate wal.messages cascade');
  for (let done = 0; done < DELIVER; done += BATCH_SIZE) {
    await outbox(
      namespaces['bench-deliver']!,
      Array.from({ length: Math.min(BATCH_SIZE, DELIVER - done) }, message),
    );
  }
  const mercatoDelivered = async () =>
    Number(
      (
        await sqlAt(urlOf(MERCATO_DB), `select count(*) as n from wal.messages where state = 'delivered'`)
      )[0]?.['n'],
    );
  let started = performance.now();
  await wal.start?.();
  const mercatoDone = await waitUntil(async () => (await mercatoDelivered()) >= DELIVER, 600_000);
  results['mercatoDeliver'] = DELIVER / ((performance.now() - started) / 1000);
  if (!mercatoDone) notes.push(`Mercato delivered only ${await mercatoDelivered()} of ${DELIVER} in 10 min.`);

  for (let done = 0; done < DELIVER; done += BATCH_SIZE) {
    await boss.insert('deliver', bossBatch.slice(0, Math.min(BATCH_SIZE, DELIVER - done)));
  }
  const bossCompleted = async (queue: string) =>
    Number(
      (
        await sqlAt(
          urlOf(BOSS_DB),
          `select count(*) as n from pgboss.job where name = $1 and state = 'completed'`,
          [queue],
        )
      )[0]?.['n'],
    );
  started = performance.now();
  // Mercato's engine leases 64 per wake and runs up to 8 deliveries of a namespace at once.
  await boss.work(
    'deliver',
    { batchSize: 64, localConcurrency: 8, pollingIntervalSeconds: 0.5 },
    async () => {},
  );
  const bossDone = await waitUntil(async () => (await bossCompleted('deliver')) >= DELIVER, 600_000);
  results['bossDeliver'] = DELIVER / ((performance.now() - started) / 1000);
  if (!bossDone)
    notes.push(`pg-boss completed only ${await bossCompleted('deliver')} of ${DELIVER} in 10 min.`);
  await boss.offWork('deliver');
  console.log('deliver', results);

  /** How many rows are done, and the p50/p99 of their lateness in ms, for either peer's table. */
  const latenessOf = async (url: string, table: string, done: string, late: string, where: string) =>
    (
      await sqlAt(
        url,
        `select count(*) filter (where state = '${done}') as n,
                percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from ${late}) * 1000) as p
           from ${table} where ${where}`,
      )
    )[0] as { n: string; p: number[] | null };

  // 5. Lateness of delayed messages (delay 1,000–3,000 ms), consumers running.
  const delays = Array.from({ length: DELAYED }, (_, i) => 1000 + ((i * 7919) % 2001));
  for (let done = 0; done < DELAYED; done += BATCH_SIZE) {
    await outbox(
      namespaces['bench-delayed']!,
      delays.slice(done, done + BATCH_SIZE).map((delay) => ({ payload: PAYLOAD, lifecycle: { delay } })),
    );
  }
  const lateness = () =>
    latenessOf(
      urlOf(MERCATO_DB),
      'wal.messages',
      'delivered',
      'delivered_at - due_at',
      "namespace = 'bench-delayed'",
    );
  await waitUntil(async () => Number((await lateness()).n) >= DELAYED, 60_000);
  const mercatoLate = await lateness();
  results['mercatoLateP50'] = mercatoLate.p?.[0] ?? Number.NaN;
  results['mercatoLateP99'] = mercatoLate.p?.[1] ?? Number.NaN;
  if (Number(mercatoLate.n) < DELAYED)
    notes.push(`Mercato delivered ${mercatoLate.n} of ${DELAYED} delayed messages.`);

  await boss.work(
    'delayed',
    { batchSize: 64, localConcurrency: 8, pollingIntervalSeconds: 0.5 },
    async () => {},
  );
  const now = Date.now();
  for (let done = 0; done < DELAYED; done += BATCH_SIZE) {
    await boss.insert(
      'delayed',
      delays
        .slice(done, done + BATCH_SIZE)
        .map((delay) => ({ data: PAYLOAD, startAfter: new Date(now + delay) })),
    );
  }
  const bossLateness = () =>
    latenessOf(urlOf(BOSS_DB), 'pgboss.job', 'completed', 'completed_on - start_after', "name = 'delayed'");
  await waitUntil(async () => Number((await bossLateness()).n) >= DELAYED, 60_000);
  const bossLate = await bossLateness();
  results['bossLateP50'] = bossLate.p?.[0] ?? Number.NaN;
  results['bossLateP99'] = bossLate.p?.[1] ?? Number.NaN;
  if (Number(bossLate.n) < DELAYED) notes.push(`pg-boss completed ${bossLate.n} of ${DELAYED} delayed jobs.`);
  console.log('lateness', results);
} finally {
  await boss.stop({ graceful: false }).catch(() => {});
  await wal.stop?.().catch(() => {});
  await closeContext(ctx);
}

// ---------------------------------------------------------------- 4. HTTP single writes
type HttpRow = { rps: number; p50: number; p99: number; errors: number; non2xx: number };
let http: HttpRow | undefined;
const server = runMercato(['start'], {
  DATABASE_URL: urlOf(MERCATO_DB),
  PORT: '0',
  LOG_LEVEL: 'warn',
  MERCATO_WORKERS: WORKERS,
  MERCATO_DEMO: 'false',
  MERCATO_RATE_LIMIT_ANONYMOUS: '100000000',
  MERCATO_RATE_LIMIT_AUTHENTICATED: '100000000',
  MERCATO_LOGIN_RATE_LIMIT: '100000000',
  MERCATO_LOGIN_MAX_FAILURES: '100000000',
});
try {
  const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: 'bench', email: ADMIN_EMAIL, password: PASSWORD }),
  });
  const { accessToken } = (await login.json()) as { accessToken: string };
  const headers = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' };
  const created = await fetch(`${base}/api/v1/wal/namespaces`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'bench-http', targets: [] }),
  });
  if (created.status !== 201) throw new Error(`namespace: ${created.status} ${await created.text()}`);
  const options = {
    url: `${base}/api/v1/wal/write`,
    method: 'POST' as const,
    headers,
    body: JSON.stringify({ namespace: 'bench-http', payload: PAYLOAD }),
    connections: 64,
  };
  await autocannon({ ...options, duration: 2 });
  const result = await autocannon({ ...options, duration: DURATION });
  http = {
    rps: round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
  console.log('http', http);
} catch (error) {
  notes.push(`HTTP part failed: ${(error as Error).message}`);
  console.error(error);
} finally {
  server.child.kill('SIGTERM');
  await server.exited;
  for (const db of [MERCATO_DB, BOSS_DB]) await sqlAt(adminUrl, `drop database if exists ${db} with (force)`);
}

// ---------------------------------------------------------------- report
const r = (key: string) => round(results[key] ?? Number.NaN);
const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
const table = [
  `| Measure | Mercato (PostgreSQL backend) | pg-boss ${bossVersion} | Mercato / pg-boss |`,
  '|---|---:|---:|---:|',
  `| Single writes/s, ${CONCURRENCY} callers, outbox \`wal.write\`, one transaction per message (no group commit) vs \`send\` | ${r('mercatoSingleNoGroup')} | ${r('bossSend')} | ${x(r('mercatoSingleNoGroup'), r('bossSend'))} |`,
  `| Single writes/s, ${CONCURRENCY} callers, group committer (the HTTP write path; ${results['groupRowsPerFlush']?.toFixed(1)} rows per commit) vs \`send\` | ${r('mercatoSingleGroup')} | ${r('bossSend')} | ${x(r('mercatoSingleGroup'), r('bossSend'))} |`,
  `| Batch writes/s, ${BATCH_SIZE} per transaction, one caller: \`wal.write\` vs \`insert\` | ${r('mercatoBatch')} | ${r('bossBatch')} | ${x(r('mercatoBatch'), r('bossBatch'))} |`,
  `| Delivery/s to a no-op handler, ${DELIVER} written first: delivery engine vs \`work\` (batchSize 64, localConcurrency 8) | ${r('mercatoDeliver')} | ${r('bossDeliver')} | ${x(r('mercatoDeliver'), r('bossDeliver'))} |`,
  `| Lateness of ${DELAYED} delayed messages (1–3 s), p50 / p99 ms | ${r('mercatoLateP50')} / ${r('mercatoLateP99')} | ${r('bossLateP50')} / ${r('bossLateP99')} | |`,
  http
    ? `| HTTP \`POST /api/v1/wal/write\`, 64 connections, ${DURATION} s: requests/s, p50 / p99 ms (errors ${http.errors}, non-2xx ${http.non2xx}) | ${http.rps}, ${http.p50} / ${http.p99} | no HTTP API | |`
    : '| HTTP `POST /api/v1/wal/write` | not measured (see notes) | no HTTP API | |',
].join('\n');
const bestSingle = Math.max(r('mercatoSingleGroup'), r('mercatoSingleNoGroup'));
const verdict = [
  `- PostgreSQL backend writes at least 3× pg-boss send: group committer ${x(r('mercatoSingleGroup'), r('bossSend'))}, outbox batch vs insert ${x(r('mercatoBatch'), r('bossBatch'))}: ${met(bestSingle >= 3 * r('bossSend'))} for single writes, ${met(r('mercatoBatch') >= 3 * r('bossBatch'))} for batches.`,
  `- Delivers at least 2× pg-boss processing: ${x(r('mercatoDeliver'), r('bossDeliver'))}: ${met(r('mercatoDeliver') >= 2 * r('bossDeliver'))}.`,
  http
    ? `- HTTP 10,000 writes/s with p99 under 50 ms at 64 connections: ${http.rps}/s, p99 ${http.p99} ms: ${met(http.rps >= 10_000 && http.p99 < 50)}.`
    : '- HTTP 10,000 writes/s with p99 under 50 ms at 64 connections: not measured.',
  `- Lateness p99 under 100 ms: ${r('mercatoLateP99')} ms: ${met(r('mercatoLateP99') < 100)}.`,
].join('\n');
const body = `## WAL (\`npm run bench:wal\`)

Run ${new Date().toISOString().slice(0, 10)}, PostgreSQL ${pgVersion} on loopback, Mercato and pg-boss each on
their own database of that server, both in this process with a pool of ${config.dbPoolSize} connections, the
same 1 KiB JSON payload, and both answering only after their PostgreSQL commit (synchronous_commit
${syncCommit}). ${SINGLE_TOTAL} single writes per row after a ${Math.min(1000, SINGLE_TOTAL)}-write warm-up,
${BATCHES} batches of ${BATCH_SIZE}. The HTTP row runs the real server (\`mercato start\`,
MERCATO_WORKERS=${WORKERS}) with autocannon on the same machine after a 2 s warm-up; pg-boss has no HTTP API.
Machine: ${describeMachine()}.

${table}

Targets:
${verdict}
${notes.length > 0 ? `\nNotes: ${notes.join(' ')}\n` : ''}
The delivery row times from starting the consumer until the database shows every message
delivered (Mercato: \`state = 'delivered'\`, with its attempt row and inbox record per message;
pg-boss: \`state = 'completed'\`). Lateness is \`delivered_at - due_at\` (Mercato) and
\`completed_on - start_after\` (pg-boss, polling every 0.5 s) with both consumers idle otherwise; the
${DELAYED} messages fall due over 2 s, i.e. ${round(DELAYED / 2)} deliveries/s, so a consumer slower than that
falls behind and its lateness measures its throughput rather than its timer.`;
await writeSection('wal', body);
console.log(`${table}\n\n${verdict}\n${notes.join('\n')}`);
process.exit(0);
