import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '../../identity/tenants/index.ts';
import { startTestApp, type TestApp } from '../testing/index.ts';
import { AppError, toProblem } from './errors.ts';

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

  it('refuses a query integer written as a fraction, in hex or with an exponent, where it was truncated and answered', async () => {
    for (const limit of ['1.5', '0x10', '1e1', '%201', '']) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/users?limit=${limit}`,
        headers: { authorization: `Bearer ${admin}` },
      });
      const body = expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(body.errors, limit).toEqual([expect.objectContaining({ in: 'query', pointer: '/limit' })]);
    }
    const plain = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users?limit=2',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(plain.statusCode).toBe(200);
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

  it('answers a JSON body in a charset other than UTF-8 with 415 instead of reading it as UTF-8', async () => {
    const body = JSON.stringify({ tenant: 'acme', email: 'a@acme.test', password: PASSWORD });
    for (const contentType of ['application/json; charset=utf-16', 'application/json;charset="ISO-8859-1"']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { 'content-type': contentType },
        payload: contentType.includes('16') ? Buffer.from(body, 'utf16le') : body,
      });
      const problem = expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
      expect(problem.detail).toMatch(/must be UTF-8/);
    }
    // UTF-8 and US-ASCII, however spelled, are read as before.
    for (const contentType of ['application/json; charset=UTF-8', 'application/json; charset="us-ascii"']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { 'content-type': contentType },
        payload: JSON.stringify({ tenant: 'acme' }),
      });
      expectProblem(res, 400, 'VALIDATION_FAILED');
    }
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

  it('names an unknown and a missing field in words', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { tenant: 'acme', email: 'bob@acme.test', name: 'Bob', role: 'admin' },
    });
    const body = expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { in: 'body', pointer: '/role', message: 'unknown field "role"' },
        { in: 'body', pointer: '/password', message: 'missing field "password"' },
      ]),
    );
  });

  it('answers an unknown method on a known path with 405 and an Allow header', async () => {
    const res = await t.app.inject({ method: 'PATCH', url: '/api/v1/auth/login?x=1' });
    const body = expectProblem(res, 405, 'METHOD_NOT_ALLOWED');
    expect(res.headers['allow']).toBe('OPTIONS, POST');
    expect(body.detail).toBe('PATCH is not allowed on /api/v1/auth/login; allowed: OPTIONS, POST');
    // GET and PUT /users/profile, and the methods of /users/{id}, which takes the path too.
    const profile = await t.app.inject({ method: 'POST', url: '/api/v1/users/profile/' });
    expectProblem(profile, 405, 'METHOD_NOT_ALLOWED');
    const allowed = String(profile.headers['allow']).split(', ');
    expect(allowed).toEqual(expect.arrayContaining(['GET', 'HEAD', 'OPTIONS', 'PUT']));
    expect(allowed).not.toContain('POST');
    // A path no route answers stays a 404.
    expectProblem(
      await t.app.inject({ method: 'PATCH', url: '/api/v1/users/profile/x' }),
      404,
      'ROUTE_NOT_FOUND',
    );
  });

  it('checks the permission before the body: a customer gets 403, not a 400 or 413 about a body it may not send', async () => {
    const headers = { authorization: `Bearer ${customer}`, 'content-type': 'application/json' };
    for (const payload of ['{"email":', `{"name":"${'x'.repeat(2 * 1024 * 1024)}"}`]) {
      expectProblem(
        await t.app.inject({ method: 'POST', url: '/api/v1/users', headers, payload }),
        403,
        'FORBIDDEN',
      );
    }
    // No credential at all: 401 before the body, on routes guarded per route and per plugin.
    for (const url of ['/api/v1/users', '/api/v1/api-keys', '/api/v1/tenants']) {
      const res = await t.app.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload: '{"broken',
      });
      expectProblem(res, 401, 'UNAUTHENTICATED');
    }
    expectProblem(
      await t.app.inject({ method: 'POST', url: '/api/v1/api-keys', headers, payload: '{"broken' }),
      403,
      'FORBIDDEN',
    );
  });

  it('refuses a lone surrogate, an overflowing number and deep nesting in any JSON body, naming the field', async () => {
    const send = (payload: string) =>
      t.app.inject({
        method: 'PUT',
        url: '/api/v1/users/profile',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        payload,
      });
    const me = () =>
      t.app.inject({ url: '/api/v1/users/profile', headers: { authorization: `Bearer ${admin}` } });
    const before = (await me()).json();
    const surrogate = expectProblem(await send('{"name":"Ann \\ud800"}'), 400, 'INVALID_UNICODE');
    expect(surrogate.errors).toEqual([
      { in: 'body', pointer: '/name', message: 'must not contain a lone UTF-16 surrogate' },
    ]);
    const number = expectProblem(await send('{"name":"Ann","x":-1e309}'), 400, 'NUMBER_OUT_OF_RANGE');
    expect(number.errors).toEqual([
      { in: 'body', pointer: '/x', message: 'must be a number a 64-bit float can hold' },
    ]);
    expectProblem(await send(`{"name":${'['.repeat(65)}${']'.repeat(65)}}`), 400, 'JSON_TOO_DEEP');
    expect((await me()).json()).toEqual(before);
  });

  it('answers a cursor this API did not issue with 400 INVALID_CURSOR naming it', async () => {
    for (const cursor of ['a.b', 'bm90LWEtdXVpZA', Buffer.from([0xff, 0xfe]).toString('base64url')]) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/users?cursor=${cursor}`,
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(expectProblem(res, 400, 'INVALID_CURSOR').errors).toEqual([
        { in: 'query', pointer: '/cursor', message: expect.stringMatching(/^is not a valid cursor/) },
      ]);
    }
  });

  it('answers a path that is not valid percent-encoding with a 400 problem', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/users/%zz' });
    expect(res.headers['x-request-id']).toBeTruthy();
    expectProblem(res, 400, 'VALIDATION_FAILED');
    // Answered by the router, before any hook: still with the security headers every answer carries.
    expect(res.headers['x-content-type-options']).toBe('nosniff');
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

describe('AppError', () => {
  it('takes a stack trace for a failure (5xx) only, and leaves the stack trace limit as it found it', () => {
    const limit = Error.stackTraceLimit;
    const refusal = new AppError('NOT_FOUND', 'no such thing');
    const failure = new AppError('INTERNAL', 'it broke');
    expect(refusal.stack).toBe('AppError: no such thing');
    expect(failure.stack?.split('\n').length).toBeGreaterThan(1);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(refusal).toBeInstanceOf(Error);
    expect(refusal).toMatchObject({ code: 'NOT_FOUND', status: 404, message: 'no such thing' });
  });

  it('keeps the members of the problem when an extra has one of their names', () => {
    const error = new AppError('CONFLICT', 'reservation r1 is released', {
      status: 'released',
      code: 'other',
      detail: 'other',
      reservationId: 'r1',
    });
    expect(toProblem(error, '/api/v1/x', 'req-1')).toEqual({
      type: 'urn:mercato:problem:conflict',
      title: expect.any(String),
      status: 409,
      code: 'CONFLICT',
      detail: 'reservation r1 is released',
      instance: '/api/v1/x',
      requestId: 'req-1',
      reservationId: 'r1',
    });
  });
});
