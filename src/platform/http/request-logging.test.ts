import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdentity } from '../../identity/index.ts';
import { createTenant } from '../../identity/tenants/index.ts';
import { loadConfig } from '../config/index.ts';
import type { AppContext } from '../context.ts';
import { closeContext, createContext } from '../runtime.ts';
import { cloneTestDatabase } from '../testing/index.ts';
import { buildApp } from './index.ts';

const PASSWORD = 'correct horse battery staple';
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type LogLine = Record<string, unknown> & { level: number; msg: string };

/** The whole app, as startTestApp builds it, but logging at debug into an array the test reads. */
async function startLoggedApp() {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const { db, url, drop } = await cloneTestDatabase();
  const config = loadConfig({
    LOG_LEVEL: 'debug',
    MERCATO_DEMO: 'false',
    ...(url ? { DATABASE_URL: url } : {}),
  });
  const ctx: AppContext = await createContext(config, { db, logger });
  const identity = await createIdentity(ctx);
  const app: FastifyInstance = await buildApp(ctx, {
    authenticate: identity.authenticate,
    modules: [identity],
  });
  await app.ready();
  return {
    app,
    ctx,
    identity,
    lines,
    linesOf: (requestId: string) => lines.filter((line) => line['requestId'] === requestId),
    async close() {
      await app.close();
      await identity.stop?.();
      await closeContext({ ...ctx, db: { ...ctx.db, close: async () => {} } });
      await drop();
    },
  };
}

describe('request ids, trace context and request logs', () => {
  let t: Awaited<ReturnType<typeof startLoggedApp>>;
  let token: string;
  let userId: string;
  let tenantId: string;

  beforeAll(async () => {
    t = await startLoggedApp();
    const { tenant, admin } = await createTenant(t.identity.deps.db, {
      slug: 'acme',
      name: 'Acme',
      adminEmail: 'admin@acme.test',
      adminPassword: PASSWORD,
    });
    tenantId = tenant.id;
    userId = admin.id;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { tenant: 'acme', email: 'admin@acme.test', password: PASSWORD },
    });
    token = res.json().accessToken;
  });
  afterAll(() => t?.close());

  it('echoes a safe incoming X-Request-Id and logs under it', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': 'lb-7f3a.91:b_2' },
    });
    expect(res.headers['x-request-id']).toBe('lb-7f3a.91:b_2');
    expect(t.linesOf('lb-7f3a.91:b_2').map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
  });

  it('generates a UUIDv7 request id when none is given', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health/live' });
    expect(res.headers['x-request-id']).toMatch(UUID_V7);
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['with spaces', 'abc def'],
    ['with CRLF', 'abc\r\nx-injected: 1'],
    ['with a slash', '../etc'],
    ['empty', ''],
  ])('replaces an unsafe X-Request-Id (%s) with a UUIDv7', async (_case, unsafe) => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { 'x-request-id': unsafe },
    });
    expect(res.headers['x-request-id']).toMatch(UUID_V7);
    expect(res.headers['x-injected']).toBeUndefined();
  });

  it('carries the request id into problem bodies', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/nowhere',
      headers: { 'x-request-id': 'trace-me-404' },
    });
    expect(res.json().requestId).toBe('trace-me-404');
  });

  it('writes traceId, spanId and requestId on every line, and tenantId and userId once authenticated', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const spanId = '00f067aa0ba902b7';
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users/profile',
      headers: {
        authorization: `Bearer ${token}`,
        traceparent: `00-${traceId}-${spanId}-01`,
        'x-request-id': 'traced-profile-read',
      },
    });
    expect(res.statusCode).toBe(200);
    const lines = t.linesOf('traced-profile-read');
    expect(lines.map((l) => l.msg)).toEqual(['incoming request', 'request completed']);
    for (const line of lines)
      expect(line).toMatchObject({ traceId, spanId, requestId: 'traced-profile-read' });
    expect(lines[1]).toMatchObject({ tenantId, userId, res: { statusCode: 200 } });
  });

  it('never writes the bearer token into the logs', async () => {
    await t.app.inject({
      method: 'GET',
      url: '/api/v1/users/profile',
      headers: { authorization: `Bearer ${token}`, 'x-request-id': 'secret-check' },
    });
    expect(JSON.stringify(t.lines)).not.toContain(token);
  });

  it('ignores a malformed traceparent instead of failing the request', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: {
        traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
        'x-request-id': 'bad-trace',
      },
    });
    expect(res.statusCode).toBe(200);
    for (const line of t.linesOf('bad-trace')) expect(line).not.toHaveProperty('traceId');
  });
});

describe('a 500 never shows internals', () => {
  let t: Awaited<ReturnType<typeof startLoggedApp>>;
  beforeAll(async () => {
    t = await startLoggedApp();
  });
  afterAll(() => t?.close());

  it('answers a failing SQL statement with a bare 500 INTERNAL problem and logs the cause', async () => {
    // A real failure: the table the route reads is gone (renamed by the owner, behind the app's back).
    await t.ctx.db.withScriptRunner((db) => db.exec('alter table identity.tenants rename to tenants_moved'));
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      headers: { 'x-request-id': 'boom-500' },
      payload: { tenant: 'acme', email: 'ann@acme.test', password: PASSWORD, name: 'Ann' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({
      code: 'INTERNAL',
      status: 500,
      requestId: 'boom-500',
      instance: '/api/v1/auth/register',
    });
    const text = res.body.toLowerCase();
    for (const leak of ['at ', 'select', 'relation', 'tenants', '.ts', 'stack'])
      expect(text).not.toContain(leak);

    const logged = t.linesOf('boom-500').find((line) => line.level === 50);
    expect(logged?.msg).toBe('request failed');
    const err = logged?.['err'] as { message: string; stack: string };
    expect(err.message).toMatch(/relation .*tenants.* does not exist/);
    expect(err.stack).toContain('at ');
  });
});
