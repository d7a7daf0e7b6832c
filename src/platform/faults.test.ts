import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestTenant,
  login,
  PASSWORD,
  post,
  type TestTenant,
} from '../identity/auth/auth-test-fixtures.ts';
import { createIdentity, type IdentityModule } from '../identity/index.ts';
import { until } from '../wal/e2e/receiver.ts';
import { startTcpProxy, type TcpProxy } from '../wal/e2e/tcp-proxy.ts';
import { createWal } from '../wal/index.ts';
import type { AppContext } from './context.ts';
import { openDatabase } from './db/index.ts';
import { buildApp } from './http/index.ts';
import { closeContext, createContext, loadConfig } from './index.ts';
import { startTestApp, type TestApp } from './testing/index.ts';
import { cloneTestDatabase, testDatabaseKind } from './testing/test-databases.ts';

type Ready = { checks: Record<string, string>; down: string[] };

// Nothing listens on port 1: Redis and NATS are unreachable from the first moment.
const DEAD = { REDIS_URL: 'redis://127.0.0.1:1', NATS_URL: 'nats://127.0.0.1:1' };

describe('Redis and NATS unreachable at start', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let admin: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp(
      { ...DEAD, MERCATO_RATE_LIMIT_ANONYMOUS: '5', MERCATO_LOGIN_RATE_LIMIT: '100000' },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    tenant = await createTestTenant(t, 'dead-servers');
    admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves, and /health/ready answers 503 naming both', async () => {
    expect((await t.app.inject({ url: '/health/live' })).statusCode).toBe(200);
    const ready = await t.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.headers['retry-after']).toBeDefined();
    const body = ready.json<Ready>();
    expect(body.down).toEqual(expect.arrayContaining(['redis', 'nats']));
    expect(body.checks[testDatabaseKind() === 'postgres' ? 'postgres' : 'pglite']).toBe('up');
  });

  it('keeps rate limits with in-process counters instead of letting every request through', async () => {
    const attempt = () =>
      post(
        t.app,
        '/api/v1/auth/login',
        { tenant: tenant.slug, email: 'x@x.test', password: PASSWORD },
        {},
        '192.0.2.44',
      );
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await attempt()).statusCode);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });

  it('counts failed logins in the process: a wrong password answers 401, not 503', async () => {
    const wrong = await post(t.app, '/api/v1/auth/login', {
      tenant: tenant.slug,
      email: tenant.adminEmail,
      password: 'not-the-right-password',
    });
    expect(wrong.statusCode, wrong.body).toBe(401);
  });

  it('writes namespaces on either backend to their fallback, or answers 503 BACKEND_UNAVAILABLE', async () => {
    for (const backend of ['redis-streams', 'nats-jetstream']) {
      for (const fallback of [true, false]) {
        const name = `${backend}-${fallback ? 'with' : 'without'}`;
        const made = await post(
          t.app,
          '/api/v1/wal/namespaces',
          { name, backend, ...(fallback ? { fallbackBackend: 'postgres' } : {}) },
          admin,
        );
        expect(made.statusCode, made.body).toBe(201);
        const written = await post(t.app, '/api/v1/wal/write', { namespace: name, payload: { n: 1 } }, admin);
        if (fallback) {
          expect(written.statusCode, written.body).toBe(202);
          expect(written.json()).toMatchObject({ backend: 'postgres' });
        } else {
          expect(written.statusCode, written.body).toBe(503);
          expect(written.json()).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
          expect(written.headers['retry-after']).toBe('5');
        }
      }
    }
  });
});

// PostgreSQL reached through a proxy the test can cut: a real outage under a running app.
describe.runIf(testDatabaseKind() === 'postgres')('PostgreSQL lost while running', () => {
  let proxy: TcpProxy;
  let database: Awaited<ReturnType<typeof cloneTestDatabase>>;
  let ctx: AppContext;
  let identity: IdentityModule;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let tenant: TestTenant;

  beforeAll(async () => {
    database = await cloneTestDatabase();
    const url = new URL(database.url!);
    proxy = await startTcpProxy(Number(url.port || 5432), url.hostname);
    url.port = String(proxy.port);
    const config = loadConfig({ LOG_LEVEL: 'silent', MERCATO_DEMO: 'false', DATABASE_URL: url.toString() });
    const db = await openDatabase({ databaseUrl: url.toString(), poolSize: 4 });
    ctx = await createContext(config, { db });
    identity = await createIdentity(ctx);
    app = await buildApp(ctx, { authenticate: identity.authenticate, modules: [identity] });
    await app.ready();
    await identity.start?.();
    tenant = await createTestTenant({ identity } as TestApp, 'pg-outage');
  });
  afterAll(async () => {
    await app?.close();
    await identity?.stop?.();
    if (ctx) await closeContext(ctx);
    await proxy?.close();
    await database?.drop();
  });

  const attempt = () =>
    post(app, '/api/v1/auth/login', { tenant: tenant.slug, email: tenant.adminEmail, password: PASSWORD });

  it('answers 503 DATABASE_UNAVAILABLE with Retry-After while it is away, and recovers when it returns', {
    timeout: 90_000,
  }, async () => {
    expect((await attempt()).statusCode).toBe(200);
    await proxy.cut();
    try {
      const refused = await until(async () => {
        const response = await attempt();
        return response.statusCode === 503 ? response : undefined;
      }, 'a 503 while PostgreSQL is away');
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE', status: 503 });
      const ready = await app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json<Ready>().down).toContain('postgres');
    } finally {
      await proxy.restore();
    }
    await until(async () => (await attempt()).statusCode === 200, 'a login once PostgreSQL is back', 30_000);
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
  });
});
