/**
 * `npm test`: runs every suite on PGlite and, when they answer, on PostgreSQL, Redis and NATS.
 * A server that does not answer is named with the reason and its suites are skipped; with
 * MERCATO_TEST_REQUIRE_SERVICES=1 a missing server fails the run instead. Arguments are Vitest
 * filters: `npm test -- src/identity`.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { connect as connectNats } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { RunnerTask } from 'vitest';
import { startVitest } from 'vitest/node';
import { testServerUrl } from '../src/platform/testing/test-databases.ts';

type Probe = { name: string; url: string; ok: boolean; reason?: string; suites: string };
type Skip = {
  project: string;
  file: string;
  key: string;
  todo: boolean;
  note: string | undefined;
  /** The comment above the skipIf / runIf that skipped the test, if any. */
  why: string | undefined;
  /** A suite around it failed before it ran (a beforeAll that threw, a file that did not load). */
  suiteFailed: boolean;
};

const sources = new Map<string, string>();
const sourceOf = (file: string) => {
  let text = sources.get(file);
  if (text === undefined) {
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = '';
    }
    sources.set(file, text);
  }
  return text;
};

// What a test file's source says about a server it needs (describe.skipIf(!testRedisUrl()), …).
const NEEDS: Record<string, RegExp> = {
  PostgreSQL: /testDatabaseKind\(\) === 'postgres'/,
  Redis: /testRedisUrl\(\)|MERCATO_TEST_REDIS_URL/,
  NATS: /testNatsUrl\(\)|MERCATO_TEST_NATS_URL/,
};

/**
 * The comment written above the `runIf` / `skipIf` that skipped task (on the test or on one of
 * its suites), as one line.
 */
function conditionComment(task: RunnerTask, file: string): string | undefined {
  const lines = sourceOf(file).split('\n');
  for (let at: RunnerTask | undefined = task; at; at = at.suite) {
    const line = at.location?.line;
    if (line === undefined) continue;
    const start = [line - 1, line - 2].find((i) => /\b(runIf|skipIf)\b/.test(lines[i] ?? ''));
    if (start === undefined) continue;
    const comment: string[] = [];
    for (let i = start - 1; i >= 0 && /^\s*\/\//.test(lines[i]!); i--) {
      comment.unshift(lines[i]!.replace(/^\s*\/\/\s?/, ''));
    }
    return comment.length > 0 ? comment.join(' ') : undefined;
  }
  return undefined;
}

/**
 * Why a test was skipped: the note it gave (ctx.skip(note)); that it ran on the other project
 * (a PostgreSQL-only or PGlite-only test); that a server it needs did not answer; or that its
 * condition does not hold on either project (e.g. a generated per-route check for a route with no
 * body).
 */
function skipReason(skip: Skip, ran: Set<string>, missing: Probe[]): string {
  if (skip.note) return skip.note;
  if (skip.todo) return 'todo: declared, not written yet';
  if (skip.suiteFailed) return 'not run: a suite around them failed first (see the failures below)';
  const elsewhere = ran.has(skip.key);
  if (elsewhere && skip.project === 'pglite') {
    return 'PostgreSQL-only: skipped on the pglite project, run on the postgres project';
  }
  if (elsewhere && skip.project === 'postgres') {
    return 'PGlite-only (the embedded shape): skipped on the postgres project, run on the pglite project';
  }
  const source = sourceOf(skip.file);
  const down = missing.filter((p) => NEEDS[p.name]?.test(source)).map((p) => p.name);
  if (down.length > 0) return `need ${down.join(' and ')}, which did not answer (see above)`;
  return 'not applicable: their condition holds on neither project (e.g. a generated per-route check of a route without a body or path parameters)';
}

/** The skipped tests grouped by reason, then by file and the comment the test gives. */
function skipSummary(skips: Skip[], ran: Set<string>, missing: Probe[]): string {
  const byReason = new Map<string, Map<string, number>>();
  for (const skip of skips) {
    const reason = skipReason(skip, ran, missing);
    const places = byReason.get(reason) ?? new Map<string, number>();
    const place = skip.why && skip.why !== reason ? `${skip.file}: ${skip.why}` : skip.file;
    places.set(place, (places.get(place) ?? 0) + 1);
    byReason.set(reason, places);
  }
  return [...byReason]
    .map(([reason, places]) => {
      const total = [...places.values()].reduce((a, b) => a + b, 0);
      const list = [...places].map(([place, n]) => `    ${n} in ${place}`).join('\n');
      return `- ${total} ${reason}:\n${list}`;
    })
    .join('\n');
}

const TIMEOUT_MS = 3000;

async function probe(name: string, url: string, suites: string, check: () => Promise<void>): Promise<Probe> {
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no answer in ${TIMEOUT_MS} ms`)), TIMEOUT_MS),
      ),
    ]);
    return { name, url, ok: true, suites };
  } catch (error) {
    return { name, url, ok: false, reason: (error as Error).message, suites };
  }
}

function redacted(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

const postgresUrl = testServerUrl();
const redisUrl = process.env['REDIS_URL'] || 'redis://127.0.0.1:6379';
const natsUrl = process.env['NATS_URL'] || 'nats://127.0.0.1:4222';

const probes = await Promise.all([
  probe('PostgreSQL', postgresUrl, 'every suite on the postgres project', async () => {
    const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: TIMEOUT_MS });
    client.on('error', () => {});
    await client.connect();
    await client.query('select 1');
    await client.end();
  }),
  probe('Redis', redisUrl, 'Redis-backed rate limits and throttles', async () => {
    const redis = new Redis(redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await redis.ping();
    } finally {
      redis.disconnect();
    }
  }),
  probe('NATS', natsUrl, 'NATS readiness checks', async () => {
    const nc = await connectNats({ servers: natsUrl, timeout: TIMEOUT_MS, reconnect: false });
    await nc.close();
  }),
]);

const missing = probes.filter((p) => !p.ok);
for (const p of probes) {
  console.log(p.ok ? `✓ ${p.name} at ${redacted(p.url)}` : `✗ ${p.name} at ${redacted(p.url)}: ${p.reason}`);
}
const required = ['1', 'true'].includes(process.env['MERCATO_TEST_REQUIRE_SERVICES'] ?? '');
if (missing.length > 0 && required) {
  console.error(
    `MERCATO_TEST_REQUIRE_SERVICES is set and ${missing.map((p) => p.name).join(', ')} did not answer: ` +
      'start them (see DEVELOPERS.md) or unset the variable.',
  );
  process.exit(1);
}

const byName = Object.fromEntries(probes.map((p) => [p.name, p]));
if (byName['Redis']?.ok) process.env['MERCATO_TEST_REDIS_URL'] = redisUrl;
if (byName['NATS']?.ok) process.env['MERCATO_TEST_NATS_URL'] = natsUrl;
const projects = byName['PostgreSQL']?.ok ? ['pglite', 'postgres'] : ['pglite'];

// Task locations let the summary quote the comment above each skipIf / runIf.
const vitest = await startVitest(process.argv.slice(2), {
  run: true,
  watch: false,
  project: projects,
  includeTaskLocation: true,
});
const counts = { passed: 0, failed: 0, skipped: 0 };
const skips: Skip[] = [];
const ran = new Set<string>();
/**
 * Failures outside any test: a file that failed to load, a beforeAll / afterAll that threw or
 * timed out, an unhandled error. Each counts as one failure in the closing line, so a red run
 * never reads "0 failed"; they are listed above it.
 */
const outside: string[] = [];
const firstLine = (error: { name?: string; message?: string }) =>
  `${error.name ?? 'Error'}: ${(error.message ?? '').split('\n')[0]}`;
const placeOf = (task: RunnerTask) => {
  const names: string[] = [];
  for (let at: RunnerTask | undefined = task; at && at !== task.file; at = at.suite) names.unshift(at.name);
  const file = relative(process.cwd(), task.file.filepath);
  return [`${task.file.projectName ?? ''} ${file}`.trim(), ...names].join(' > ');
};
const suiteFailed = (task: RunnerTask) => {
  for (let at = task.suite; at; at = at.suite) if ((at.result?.errors?.length ?? 0) > 0) return true;
  return (task.file.result?.errors?.length ?? 0) > 0;
};
const failedInFile = new Set<string>();
const walk = (tasks: RunnerTask[]) => {
  for (const task of tasks) {
    if (task.type === 'suite') {
      const errors = task.result?.errors ?? [];
      if (errors.length > 0) {
        counts.failed += 1;
        failedInFile.add(task.file.id);
        outside.push(`- ${placeOf(task)}: ${errors.map(firstLine).join('; ')}`);
      }
      walk((task as { tasks: RunnerTask[] }).tasks);
      continue;
    }
    const file = relative(process.cwd(), task.file.filepath);
    const key = `${file} > ${task.fullTestName ?? task.name}`;
    if (task.result?.state === 'pass' || task.result?.state === 'fail') ran.add(key);
    if (task.result?.state === 'pass') counts.passed += 1;
    else if (task.result?.state === 'fail') {
      counts.failed += 1;
      failedInFile.add(task.file.id);
    } else {
      counts.skipped += 1;
      const note = (task.result as { note?: string } | undefined)?.note;
      skips.push({
        project: task.file.projectName ?? '',
        file,
        key,
        todo: task.mode === 'todo',
        note,
        why: conditionComment(task, file),
        suiteFailed: suiteFailed(task),
      });
    }
  }
};
const files = vitest.state.getFiles();
walk(files as unknown as RunnerTask[]);
for (const file of files) {
  if (file.result?.state !== 'fail' || failedInFile.has(file.id)) continue;
  counts.failed += 1;
  outside.push(`- ${placeOf(file as unknown as RunnerTask)}: failed without a failed test or an error`);
}
const unhandled = vitest.state.getUnhandledErrors() as Array<{ name?: string; message?: string }>;
for (const error of unhandled) {
  counts.failed += 1;
  outside.push(`- unhandled error: ${firstLine(error)}`);
}
await vitest.close();

if (missing.length > 0) {
  console.log('\nNot run, because a server did not answer:');
  for (const p of missing) console.log(`- ${p.suites}: ${p.name} at ${redacted(p.url)} (${p.reason})`);
}
if (skips.length > 0) console.log(`\n${skips.length} skipped:\n${skipSummary(skips, ran, missing)}`);
if (outside.length > 0) {
  console.log(
    `\n${outside.length} failed outside a test (each counted as one failure below):\n${outside.join('\n')}`,
  );
}
console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
const failedFiles = files.filter((f) => f.result?.state === 'fail').length;
process.exit(counts.failed > 0 || failedFiles > 0 || unhandled.length > 0 || counts.passed === 0 ? 1 : 0);
