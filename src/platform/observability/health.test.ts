import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, testDatabaseKind, testNatsUrl, testRedisUrl } from '../testing/index.ts';
import { checkReadiness } from './health.ts';

describe('liveness and readiness on the database alone', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('answers /health/live with 200 ok', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health/live' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('answers /health/ready with 200 listing the database check', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { [testDatabaseKind()]: 'up' } });
  });
});

const servers =
  testRedisUrl() && testNatsUrl() ? { REDIS_URL: testRedisUrl()!, NATS_URL: testNatsUrl()! } : undefined;

describe.skipIf(!servers)('readiness with Redis and NATS configured', () => {
  const ready = (t: TestApp) => t.app.inject({ method: 'GET', url: '/health/ready' });

  it('checks the database, Redis and NATS', async () => {
    const t = await startTestApp(servers);
    try {
      const res = await ready(t);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        status: 'ready',
        checks: { [testDatabaseKind()]: 'up', redis: 'up', nats: 'up' },
      });
    } finally {
      await t.close();
    }
  });

  it('answers 503 naming Redis, and only Redis, when Redis is gone', async () => {
    const t = await startTestApp(servers);
    try {
      t.ctx.redis!.disconnect();
      const res = await ready(t);
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.json()).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        status: 503,
        detail: 'not ready: redis down',
        down: ['redis'],
        checks: { [testDatabaseKind()]: 'up', redis: 'down', nats: 'up' },
      });
      // Liveness is about the process, not its servers.
      expect((await t.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('answers 503 naming NATS, and only NATS, when NATS is gone', async () => {
    const t = await startTestApp(servers);
    try {
      await t.ctx.nats!.close();
      const res = await ready(t);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        down: ['nats'],
        checks: { [testDatabaseKind()]: 'up', redis: 'up', nats: 'down' },
      });
    } finally {
      await t.close();
    }
  });
});

describe('checkReadiness', () => {
  it('counts a rejected, a false and a hung check as down, and the rest as up', async () => {
    const report = await checkReadiness([
      { name: 'fine', check: async () => true },
      { name: 'silent', check: async () => undefined },
      { name: 'refused', check: async () => Promise.reject(new Error('ECONNREFUSED')) },
      { name: 'false', check: async () => false },
      { name: 'hung', check: () => new Promise<boolean>(() => {}) },
    ]);
    expect(report).toEqual({
      ready: false,
      checks: { fine: 'up', silent: 'up', refused: 'down', false: 'down', hung: 'down' },
      down: ['refused', 'false', 'hung'],
    });
  });
});
