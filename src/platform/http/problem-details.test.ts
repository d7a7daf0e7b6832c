import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '../../identity/tenants/index.ts';
import { startTestApp, type TestApp } from '../testing/index.ts';

const PASSWORD = 'correct horse battery staple';

/** Asserts an RFC 9457 answer with every member Mercato promises, and returns its body. */
function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({
    type: `urn:mercato:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    status,
    code,
    title: expect.any(String),
    detail: expect.any(String),
    instance: expect.stringMatching(/^\//),
    requestId: res.headers['x-request-id'],
  });
  expect(body.instance).not.toContain('?');
  return body;
}

async function signIn(app: FastifyInstance, tenant: string, email: string): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { tenant, email, password: PASSWORD },
  });
  expect(res.statusCode).toBe(200);
  return res.json().accessToken;
}

describe('error answers are RFC 9457 problems', () => {
  let t: TestApp;
  let customer: string;
  let admin: string;

  beforeAll(async () => {
    t = await startTestApp();
    await createTenant(t.identity.deps.db, {
      slug: 'acme',
      name: 'Acme',
      adminEmail: 'admin@acme.test',
      adminPassword: PASSWORD,
    });
    const registered = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { tenant: 'acme', email: 'ann@acme.test', password: PASSWORD, name: 'Ann' },
    });
    expect(registered.statusCode).toBe(201);
    customer = await signIn(t.app, 'acme', 'ann@acme.test');
    admin = await signIn(t.app, 'acme', 'admin@acme.test');
  });
  afterAll(() => t?.close());

  it('answers an unknown route with 404 ROUTE_NOT_FOUND naming the method and path, never the query', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/no-such-thing?secret=1' });
    const body = expectProblem(res, 404, 'ROUTE_NOT_FOUND');
    expect(body.instance).toBe('/api/v1/no-such-thing');
    expect(body.detail).toBe('no route GET /api/v1/no-such-thing');
  });

  it('lists every failing field of a body by JSON pointer', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { tenant: 'acme', email: 'not-an-email', password: 'short' },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    const pointers = body.errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/email', '/password', '/name']));
    for (const error of body.errors)
      expect(error).toEqual({ in: 'body', pointer: expect.any(String), message: expect.any(String) });
  });

  it('names an unexpected property by its pointer', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { tenant: 'acme', email: 'bob@acme.test', password: PASSWORD, name: 'Bob', role: 'admin' },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body.errors.map((e: { pointer: string }) => e.pointer)).toContain('/role');
  });

  it('reports a bad path parameter as a params error', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users/not-a-uuid',
      headers: { authorization: `Bearer ${admin}` },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body.errors[0]).toMatchObject({ in: 'params', pointer: '/id' });
  });

  it('reports a bad query parameter as a query error', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users?limit=0',
      headers: { authorization: `Bearer ${admin}` },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body.errors[0]).toMatchObject({ in: 'query', pointer: '/limit' });
  });

  it('refuses a uuid spelled as a URN, which PostgreSQL cannot read, as a params error', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/users/urn:uuid:${uuidv7()}`,
      headers: { authorization: `Bearer ${admin}` },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body.errors[0]).toMatchObject({ in: 'params', pointer: '/id' });
  });

  it('refuses a NUL character, which PostgreSQL text cannot store, naming the field', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/users/profile',
      headers: { authorization: `Bearer ${admin}` },
      payload: { name: 'Ann\u0000' },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body.errors).toEqual([{ in: 'body', pointer: '/name', message: 'must not contain U+0000' }]);

    const query = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users?cursor=abc%00',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(expectProblem(query, 400, 'VALIDATION_FAILED').errors[0]).toMatchObject({
      in: 'query',
      pointer: '/cursor',
    });
  });

  it('answers malformed JSON with 400 MALFORMED_BODY', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: '{"tenant": "acme", ',
    });
    expectProblem(res, 400, 'MALFORMED_BODY');
  });

  it('answers an empty JSON body with 400 MALFORMED_BODY', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    expectProblem(res, 400, 'MALFORMED_BODY');
  });

  it('answers an authenticated route called without a credential with 401 and WWW-Authenticate', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/users/profile' });
    expectProblem(res, 401, 'UNAUTHENTICATED');
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it('answers a forged token with 401 INVALID_TOKEN and WWW-Authenticate', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users/profile',
      headers: { authorization: 'Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl' },
    });
    expectProblem(res, 401, 'INVALID_TOKEN');
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it('answers a customer on an admin route with 403 FORBIDDEN', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: { authorization: `Bearer ${customer}` },
      payload: { email: 'eve@acme.test', password: PASSWORD, name: 'Eve', role: 'admin' },
    });
    expectProblem(res, 403, 'FORBIDDEN');
  });

  it('answers a missing resource with 404 NOT_FOUND', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/users/${uuidv7()}`,
      headers: { authorization: `Bearer ${admin}` },
    });
    expectProblem(res, 404, 'NOT_FOUND');
  });

  it('answers a duplicate registration with 409 EMAIL_TAKEN', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { tenant: 'acme', email: 'ANN@acme.test', password: PASSWORD, name: 'Ann again' },
    });
    expectProblem(res, 409, 'EMAIL_TAKEN');
  });

  it('answers a body one byte over the default 1 MiB limit with 413', async () => {
    const limit = 1024 * 1024;
    const payload = JSON.stringify({ tenant: 'acme', email: 'a@acme.test', password: PASSWORD, name: '' });
    const padded = `${payload.slice(0, -2)}${'x'.repeat(limit + 1 - payload.length)}"}`;
    expect(Buffer.byteLength(padded)).toBe(limit + 1);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: padded,
    });
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers a text/plain body on a JSON route with 415', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'text/plain' },
      payload: 'tenant=acme',
    });
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers an unknown content type on a JSON route with 415', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'tenant=acme',
    });
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a path that is not valid percent-encoding with a 400 problem', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/users/%zz' });
    expect(res.headers['x-request-id']).toBeTruthy();
    expectProblem(res, 400, 'VALIDATION_FAILED');
  });
});

describe('MERCATO_BODY_LIMIT', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_BODY_LIMIT: '2048' });
  });
  afterAll(() => t?.close());

  const bodyOf = (bytes: number) => {
    const head = '{"tenant":"acme","email":"a@acme.test","password":"';
    return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
  };

  it('accepts a body of exactly the limit and refuses one byte more with 413', async () => {
    const atLimit = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: bodyOf(2048),
    });
    expect(atLimit.statusCode).toBe(400); // parsed and validated: the password is too long
    const over = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: bodyOf(2049),
    });
    expectProblem(over, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses an over-limit body sent chunked, without a content-length, over a real socket', async () => {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const chunks = [bodyOf(4096).slice(0, 2000), bodyOf(4096).slice(2000)];
    const res = await fetch(`${address}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(next));
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('PAYLOAD_TOO_LARGE');
  });
});
