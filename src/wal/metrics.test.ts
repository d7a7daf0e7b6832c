import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { createWal, type WalModule } from './index.ts';

describe('WAL metrics and readiness', () => {
  let t: TestApp;
  let wal: WalModule;
  let shop: TestTenant;
  let admin: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp(
      {},
      {
        modules: async (ctx) => {
          wal = await createWal(ctx);
          wal.registerHandler('noop', async () => {});
          return [wal];
        },
      },
    );
    shop = await createTestTenant(t, 'metrics');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const target = { name: 'noop', type: 'internal', handler: 'noop', enabled: true };
    expect(
      (await post(t.app, '/api/v1/wal/namespaces', { name: 'orders', targets: [target] }, admin)).statusCode,
    ).toBe(201);
  });
  afterAll(() => t.close());

  const metrics = async () => (await t.app.inject({ url: '/metrics' })).body;
  const sample = (text: string, name: string, labels: string) =>
    Number(
      text
        .split('\n')
        .find((line) => line.startsWith(`${name}{${labels}}`))
        ?.split(' ')
        .at(-1) ?? Number.NaN,
    );

  it('counts writes, refusals, deliveries and delivery latency', async () => {
    const written = await post(t.app, '/api/v1/wal/write', { namespace: 'orders', payload: { n: 1 } }, admin);
    expect(written.statusCode).toBe(202);
    expect(
      (await post(t.app, '/api/v1/wal/write', { namespace: 'nope', payload: {} }, admin)).statusCode,
    ).toBe(404);
    const { messageId } = written.json<{ messageId: string }>();
    for (let i = 0; i < 200; i++) {
      const state = (await t.app.inject({ url: `/api/v1/wal/messages/${messageId}`, headers: admin })).json<{
        state: string;
      }>().state;
      if (state === 'delivered') break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const text = await metrics();
    expect(
      sample(text, 'mercato_wal_writes_total', 'namespace="orders",backend="postgres",outcome="accepted"'),
    ).toBe(1);
    // A made-up namespace is no label of its own: refusals are counted by status.
    expect(
      sample(text, 'mercato_wal_writes_total', 'namespace="(refused)",backend="none",outcome="404"'),
    ).toBe(1);
    expect(text).not.toContain('namespace="nope"');
    expect(
      sample(
        text,
        'mercato_wal_delivery_attempts_total',
        'namespace="orders",target_type="internal",outcome="delivered"',
      ),
    ).toBe(1);
    expect(sample(text, 'mercato_wal_delivery_latency_seconds_count', 'namespace="orders"')).toBe(1);
    expect(sample(text, 'mercato_wal_write_duration_seconds_count', 'route="single"')).toBe(2);
    expect(text).toMatch(/^mercato_wal_consumer_lag_messages\{backend="postgres"\} \d+/m);
    expect(text).toMatch(/^mercato_wal_consumer_lag_seconds\{backend="postgres"\} /m);
  });

  it('shows dead-letter depth by namespace', async () => {
    const gone = { name: 'gone', type: 'internal', handler: 'missing', enabled: true };
    expect(
      (
        await post(
          t.app,
          '/api/v1/wal/namespaces',
          {
            name: 'broken',
            targets: [gone],
            retry: { strategy: 'fixed', baseDelayMs: 10, maxDelayMs: 10, maxAttempts: 1, jitter: 0 },
          },
          admin,
        )
      ).statusCode,
    ).toBe(201);
    expect(
      (await post(t.app, '/api/v1/wal/write', { namespace: 'broken', payload: {} }, admin)).statusCode,
    ).toBe(202);
    for (
      let i = 0;
      i < 200 && !(sample(await metrics(), 'mercato_wal_dead_letters', 'namespace="broken"') >= 1);
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(sample(await metrics(), 'mercato_wal_dead_letters', 'namespace="broken"')).toBe(1);
  });

  it('names the WAL backend in /health/ready', async () => {
    const ready = await t.app.inject({ url: '/health/ready' });
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { 'wal:postgres': 'up' } });
  });
});
