import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { namespaceNames } from '../backends/nats-jetstream/names.ts';
import { createWal } from '../index.ts';
import { until } from './receiver.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

type Ready = { down: string[] };

/**
 * Writes one message after another on a few lanes until stopped; keeps every acknowledged receipt
 * with the time its write was sent (performance.now()).
 */
function writeLoad(write: (n: number) => ReturnType<typeof post>) {
  let running = true;
  let next = 0;
  const acknowledged: Array<{ messageId: string; backend: string; sentAt: number }> = [];
  const statuses = new Set<number>();
  const lanes = Array.from({ length: 3 }, async () => {
    while (running) {
      const sentAt = performance.now();
      const response = await write(next++);
      statuses.add(response.statusCode);
      if (response.statusCode === 202) acknowledged.push({ ...response.json(), sentAt });
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
  return {
    count: () => acknowledged.length,
    async stop() {
      running = false;
      await Promise.all(lanes);
      return { acknowledged, statuses };
    },
  };
}

/**
 * One server (Redis or NATS) reached through a proxy the test can cut and restore, under a write
 * load on a namespace of its backend with the postgres fallback, and a second one unreachable
 * when the app starts.
 */
function outageSuite(
  server: 'redis' | 'nats',
  url: string | undefined,
  backend: 'redis-streams' | 'nats-jetstream',
) {
  const env = server === 'redis' ? 'REDIS_URL' : 'NATS_URL';
  const scheme = server === 'redis' ? 'redis' : 'nats';

  describe.skipIf(!url)(`${server} cut and restored while running`, () => {
    let proxy: TcpProxy;
    let t: TestApp;
    let tenant: TestTenant;
    let admin: Record<string, string>;
    const namespace = `outage-${server}`;

    beforeAll(async () => {
      const target = new URL(url!);
      proxy = await startTcpProxy(Number(target.port), target.hostname);
      t = await startTestApp(
        { [env]: `${scheme}://127.0.0.1:${proxy.port}` },
        { modules: async (ctx) => [await createWal(ctx)] },
      );
      tenant = await createTestTenant(t, `outage-${server}`);
      admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
      const made = await post(
        t.app,
        '/api/v1/wal/namespaces',
        { name: namespace, backend, fallbackBackend: 'postgres' },
        admin,
      );
      expect(made.statusCode, made.body).toBe(201);
    });
    afterAll(async () => {
      await t?.close();
      await proxy?.close();
    });

    const ready = () => t.app.inject({ url: '/health/ready' });

    it('answers /health/ready 503 while it is down and 200 after, and loses no acknowledged write', {
      timeout: 120_000,
    }, async () => {
      await until(async () => (await ready()).statusCode === 200, 'ready before the outage', 30_000);
      const load = writeLoad((n) => post(t.app, '/api/v1/wal/write', { namespace, payload: { n } }, admin));
      await until(() => load.count() >= 20, 'writes before the outage');

      await proxy.cut();
      const down = await until(async () => {
        const response = await ready();
        return response.statusCode === 503 ? response : undefined;
      }, 'readiness 503 while down');
      expect(down.json<Ready>().down).toContain(server);
      const during = load.count();
      await until(() => load.count() >= during + 20, 'writes taken while down');

      await proxy.restore();
      await until(async () => (await ready()).statusCode === 200, 'ready after the outage', 60_000);
      const readyAt = performance.now();
      const after = load.count();
      await until(() => load.count() >= after + 20, 'writes after the outage');
      const { acknowledged, statuses } = await load.stop();

      // Refusals are 503s with a code, never a 500; the fallback took writes meanwhile.
      expect([...statuses].filter((s) => s !== 202 && s !== 503)).toEqual([]);
      expect(acknowledged.some((r) => r.backend === 'postgres')).toBe(true);
      // Once ready says 200, every write goes to the backend again. (A write sent before that may
      // still end on the fallback after later ones: it is not asked about.)
      const sentWhenReady = acknowledged.filter((r) => r.sentAt > readyAt);
      expect(sentWhenReady.length).toBeGreaterThanOrEqual(10);
      expect(sentWhenReady.filter((r) => r.backend !== backend)).toEqual([]);
      const lost: string[] = [];
      for (const receipt of acknowledged) {
        const found = await t.app.inject({
          url: `/api/v1/wal/messages/${encodeURIComponent(receipt.messageId)}?namespace=${namespace}`,
          headers: admin,
        });
        if (found.statusCode !== 200) lost.push(`${receipt.messageId}: ${found.statusCode}`);
      }
      expect(lost).toEqual([]);
    });
  });

  describe.skipIf(!url)(`${server} unreachable at start, reachable later`, () => {
    let proxy: TcpProxy;
    let t: TestApp;
    let admin: Record<string, string>;
    const namespace = `late-${server}`;

    beforeAll(async () => {
      const target = new URL(url!);
      proxy = await startTcpProxy(Number(target.port), target.hostname);
      await proxy.cut();
      t = await startTestApp(
        { [env]: `${scheme}://127.0.0.1:${proxy.port}` },
        { modules: async (ctx) => [await createWal(ctx)] },
      );
      const tenant = await createTestTenant(t, `late-${server}`);
      admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
      const made = await post(t.app, '/api/v1/wal/namespaces', { name: namespace, backend }, admin);
      expect(made.statusCode, made.body).toBe(201);
    });
    afterAll(async () => {
      await t?.close();
      await proxy?.close();
    });

    it('serves without it, then takes writes on its backend once it answers, without a restart', {
      timeout: 90_000,
    }, async () => {
      const ready = await t.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json<Ready>().down).toContain(server);
      const refused = await post(t.app, '/api/v1/wal/write', { namespace, payload: { n: 0 } }, admin);
      expect(refused.statusCode, refused.body).toBe(503);
      expect(refused.json()).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });

      await proxy.restore();
      await until(
        async () => (await t.app.inject({ url: '/health/ready' })).statusCode === 200,
        'ready',
        60_000,
      );
      const written = await until(async () => {
        const response = await post(t.app, '/api/v1/wal/write', { namespace, payload: { n: 1 } }, admin);
        return response.statusCode === 202 ? response : undefined;
      }, 'a write taken by the backend');
      expect(written.json()).toMatchObject({ backend });
      const found = await t.app.inject({
        url: `/api/v1/wal/messages/${encodeURIComponent(written.json<{ messageId: string }>().messageId)}?namespace=${namespace}`,
        headers: admin,
      });
      expect(found.statusCode, found.body).toBe(200);
    });
  });
}

// Real Redis and NATS behind loopback proxies: a real outage of each, one at a time.
outageSuite('redis', testRedisUrl(), 'redis-streams');
outageSuite('nats', testNatsUrl(), 'nats-jetstream');

// NATS back without its JetStream state (a restart that lost it): simulated by deleting the
// namespace's stream while the app is cut off. The app must make it again, not keep trusting it.
describe.skipIf(!testNatsUrl())('nats back without the namespace stream', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let tenantId: string;
  let admin: Record<string, string>;
  const namespace = 'stream-lost';

  beforeAll(async () => {
    const target = new URL(testNatsUrl()!);
    proxy = await startTcpProxy(Number(target.port), target.hostname);
    t = await startTestApp(
      { NATS_URL: `nats://127.0.0.1:${proxy.port}` },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    const tenant = await createTestTenant(t, 'stream-lost');
    tenantId = tenant.id;
    admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
    const made = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: namespace, backend: 'nats-jetstream', fallbackBackend: 'postgres' },
      admin,
    );
    expect(made.statusCode, made.body).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
  });

  it('makes the stream again after the reconnect and writes to it', { timeout: 90_000 }, async () => {
    const write = () => post(t.app, '/api/v1/wal/write', { namespace, payload: { n: 1 } }, admin);
    expect((await write()).json()).toMatchObject({ backend: 'nats-jetstream' });
    await proxy.cut();
    const direct = await connect({ servers: testNatsUrl()! });
    try {
      const jsm = await jetstreamManager(direct);
      expect(await jsm.streams.delete(namespaceNames('mercato_wal', tenantId, namespace).stream)).toBe(true);
    } finally {
      await direct.close();
    }
    await proxy.restore();
    await until(
      async () => (await t.app.inject({ url: '/health/ready' })).statusCode === 200,
      'ready',
      60_000,
    );
    await until(
      async () => (await write()).json<{ backend: string }>().backend === 'nats-jetstream',
      'a write taken by nats-jetstream again',
      30_000,
    );
  });
});
