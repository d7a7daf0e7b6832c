import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { newSecret, type Receiver, startReceiver, until } from '../e2e/receiver.ts';
import { createWal } from '../index.ts';

// Fair delivery end to end, two tenants on one server: one tenant's endpoint that never answers
// cannot hold up another tenant's webhooks; consumerConcurrency is capped by the operator
// (MERCATO_WAL_MAX_CONCURRENCY); a dead endpoint opens its target's circuit breaker, shown on the
// namespace and in the metrics, and a healthy one closes it again after the half-open pause.

const MAX_CONCURRENCY = 16;
// The postgres backend always; the stream backends when scripts/test.ts found their servers.
const BACKENDS = [
  'postgres',
  ...(testRedisUrl() ? ['redis-streams'] : []),
  ...(testNatsUrl() ? ['nats-jetstream'] : []),
];
const STREAM_ENV = {
  ...(testRedisUrl() ? { REDIS_URL: testRedisUrl() as string } : {}),
  ...(testNatsUrl() ? { NATS_URL: testNatsUrl() as string } : {}),
};
type Headers = Record<string, string>;
type Circuit = { state: string; since: string | null; failures: number; lastError?: string };
type View = { consumerConcurrency: number; targets: { name: string; circuit?: Circuit }[] };

let t: TestApp;
let slow: Headers;
let fast: Headers;
let slowTenantId: string;
const receivers: Receiver[] = [];

beforeAll(async () => {
  t = await startTestApp(
    // Local receivers: the operator opens loopback (the namespaces also list it in allowedHosts).
    {
      MERCATO_WAL_MAX_CONCURRENCY: String(MAX_CONCURRENCY),
      MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1',
      ...STREAM_ENV,
    },
    { modules: async (ctx) => [await createWal(ctx, { circuits: { threshold: 3, halfOpenAfterMs: 1500 } })] },
  );
  const a = await createTestTenant(t, 'fair-slow');
  const b = await createTestTenant(t, 'fair-fast');
  slowTenantId = a.id;
  slow = { authorization: `Bearer ${(await login(t.app, a.slug, a.adminEmail)).accessToken}` };
  fast = { authorization: `Bearer ${(await login(t.app, b.slug, b.adminEmail)).accessToken}` };
});

afterAll(async () => {
  for (const receiver of receivers) await receiver.close();
  await t.close();
});

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

function namespaceBody(name: string, url: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    allowedHosts: ['127.0.0.1'],
    retry: { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50, maxAttempts: 20, jitter: 0 },
    targets: [{ name: 'hook', type: 'http', url, secret: newSecret(), timeoutMs: 60_000, enabled: true }],
    ...extra,
  };
}

async function createNamespace(headers: Headers, body: Record<string, unknown>): Promise<void> {
  const response = await post(t.app, '/api/v1/wal/namespaces', body, headers);
  expect(response.statusCode, response.body).toBe(201);
}

async function writeMany(headers: Headers, namespace: string, count: number, tag: string): Promise<void> {
  const messages = Array.from({ length: count }, (_, i) => ({ payload: { tag, i } }));
  const response = await post(t.app, '/api/v1/wal/write/batch', { namespace, messages }, headers);
  expect(response.statusCode, response.body).toBe(202);
}

async function view(headers: Headers, name: string): Promise<View> {
  const response = await t.app.inject({ url: `/api/v1/wal/namespaces/${name}`, headers });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<View>();
}

describe('fair delivery between tenants', () => {
  it('refuses a consumerConcurrency above MERCATO_WAL_MAX_CONCURRENCY on create and update, naming the field', async () => {
    const over = await post(
      t.app,
      '/api/v1/wal/namespaces',
      namespaceBody('too-many', 'http://127.0.0.1:9/hook', { consumerConcurrency: MAX_CONCURRENCY + 1 }),
      slow,
    );
    expect(over.statusCode, over.body).toBe(400);
    expect(over.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ pointer: '/consumerConcurrency' }],
    });
    await createNamespace(
      slow,
      namespaceBody('just-enough', 'http://127.0.0.1:9/hook', { consumerConcurrency: MAX_CONCURRENCY }),
    );
    const update = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/just-enough',
      payload: { consumerConcurrency: MAX_CONCURRENCY + 1 },
      headers: slow,
    });
    expect(update.statusCode, update.body).toBe(400);
    expect(update.json()).toMatchObject({ errors: [{ pointer: '/consumerConcurrency' }] });
    expect((await view(slow, 'just-enough')).consumerConcurrency).toBe(MAX_CONCURRENCY);
  });

  it.each(BACKENDS)(
    "delivers every message of one tenant while another tenant's endpoint holds its deliveries and answers none (%s)",
    async (backend) => {
      const stuck = await receiver();
      stuck.hang(() => true);
      const name = `stuck-${backend}`;
      await createNamespace(
        slow,
        namespaceBody(name, stuck.url, { backend, consumerConcurrency: MAX_CONCURRENCY }),
      );
      // A namespace stored before the cap (or written behind the API) asks for more: the engine
      // still runs at most MERCATO_WAL_MAX_CONCURRENCY of its deliveries at once.
      await sql`update wal.namespaces set consumer_concurrency = 256
      where tenant_id = ${slowTenantId} and name = ${name}`.execute(t.ctx.db.kysely);
      await writeMany(slow, name, 400, 'slow');
      await until(() => stuck.hung() >= MAX_CONCURRENCY, 'the slow endpoint holding a full window');

      const healthy = await receiver();
      await createNamespace(fast, namespaceBody(`orders-${backend}`, healthy.url, { backend }));
      await writeMany(fast, `orders-${backend}`, 50, 'fast');
      await until(() => healthy.received.length >= 50, "every message of the other tenant's namespace");

      expect(healthy.ids().size).toBe(50);
      expect(stuck.received).toHaveLength(0);
      expect(stuck.hung()).toBe(MAX_CONCURRENCY);
    },
  );

  it('opens the breaker of a target that keeps failing, shows it, stops attempting it, and closes it once healthy', async () => {
    const flaky = await receiver();
    flaky.failNext(1_000_000, 500);
    await createNamespace(fast, namespaceBody('flaky', flaky.url));
    // Nothing listens on port 9 of loopback: connection refused.
    await createNamespace(fast, namespaceBody('refused', 'http://127.0.0.1:9/hook'));
    await writeMany(fast, 'flaky', 5, 'flaky');
    await writeMany(fast, 'refused', 5, 'refused');

    for (const name of ['flaky', 'refused']) {
      const circuit = await until(async () => {
        const c = (await view(fast, name)).targets[0]?.circuit;
        return c?.state === 'open' ? c : undefined;
      }, `the breaker of ${name} open`);
      expect(circuit.failures).toBeGreaterThanOrEqual(3);
      expect(circuit.lastError).toMatch(name === 'flaky' ? /HTTP 500/ : /network error/);
    }
    const metrics = await t.app.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(
      /mercato_wal_target_circuit_state\{[^}]*namespace="flaky",target="hook"\} 1/,
    );

    // While open, deliveries are refused without a request: attempts fail with "circuit open".
    const refusedAttempts = async () =>
      (
        await sql<{ n: number }>`
          select count(*)::int as n from wal.attempts a join wal.messages m on m.id = a.message_pk
          where m.namespace = 'flaky' and a.error like 'circuit open%' and a.status_code is null`.execute(
          t.ctx.db.kysely,
        )
      ).rows[0]?.n;
    await until(refusedAttempts, 'an attempt refused by the open circuit');

    // The endpoint recovers: after the pause one probe goes through, succeeds, closes the breaker,
    // and the rest follows.
    flaky.failNext(0, 500);
    await until(() => flaky.received.length >= 5, 'every flaky message delivered once healthy');
    const closed = (await view(fast, 'flaky')).targets[0]?.circuit;
    expect(closed).toMatchObject({ state: 'closed', failures: 0 });
    const after = await t.app.inject({ url: '/metrics' });
    expect(after.body).toMatch(/mercato_wal_target_circuit_state\{[^}]*namespace="flaky",target="hook"\} 0/);

    // A deleted namespace's breakers go, and leave the metrics.
    const deleted = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/wal/namespaces/refused',
      headers: fast,
    });
    expect(deleted.statusCode, deleted.body).toBe(204);
    await until(async () => {
      const body = (await t.app.inject({ url: '/metrics' })).body;
      const circuits = body
        .split('\n')
        .filter((line) => line.startsWith('mercato_wal_target_circuit_state{'));
      return (
        !circuits.some((l) => l.includes('namespace="refused"')) &&
        circuits.some((l) => l.includes('"flaky"'))
      );
    }, 'the deleted namespace out of the circuit metrics');
  });
});
