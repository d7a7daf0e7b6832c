/**
 * `npm test`: runs every suite on PGlite and, when they answer, on PostgreSQL, Redis and NATS.
 * A server that does not answer is named with the reason and its suites are skipped; with
 * MERCATO_TEST_REQUIRE_SERVICES=1 a missing server fails the run instead. Arguments are Vitest
 * filters: `npm test -- src/identity`.
 */
import { connect as connectNats } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { RunnerTask } from 'vitest';
import { startVitest } from 'vitest/node';
import { testServerUrl } from '../src/platform/testing/test-databases.ts';

type Probe = { name: string; url: string; ok: boolean; reason?: string; suites: string };

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

const vitest = await startVitest(process.argv.slice(2), { run: true, watch: false, project: projects });
const counts = { passed: 0, failed: 0, skipped: 0 };
const walk = (tasks: RunnerTask[]) => {
  for (const task of tasks) {
    if (task.type === 'suite') walk((task as { tasks: RunnerTask[] }).tasks);
    else if (task.result?.state === 'pass') counts.passed += 1;
    else if (task.result?.state === 'fail') counts.failed += 1;
    else counts.skipped += 1;
  }
};
walk(vitest.state.getFiles() as unknown as RunnerTask[]);
const unhandled = vitest.state.getUnhandledErrors().length;
await vitest.close();

if (missing.length > 0) {
  console.log('\nNot run, because a server did not answer:');
  for (const p of missing) console.log(`- ${p.suites}: ${p.name} at ${redacted(p.url)} (${p.reason})`);
}
console.log(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
const failedFiles = vitest.state.getFiles().filter((f) => f.result?.state === 'fail').length;
process.exit(counts.failed > 0 || failedFiles > 0 || unhandled > 0 || counts.passed === 0 ? 1 : 0);
