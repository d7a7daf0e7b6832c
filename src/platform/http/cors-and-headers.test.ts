import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../testing/index.ts';

const preflight = (origin: string) => ({
  method: 'OPTIONS' as const,
  url: '/api/v1/auth/login',
  headers: {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'content-type, authorization, idempotency-key, traceparent',
  },
});

describe('CORS and security headers with the default settings', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('answers a preflight from any origin with the methods and headers the API takes', async () => {
    const res = await t.app.inject(preflight('https://shop.example'));
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    const allowed = String(res.headers['access-control-allow-headers'])
      .toLowerCase()
      .split(/\s*,\s*/);
    expect(allowed).toEqual(
      expect.arrayContaining([
        'authorization',
        'content-type',
        'x-api-key',
        'x-request-id',
        'traceparent',
        'idempotency-key',
      ]),
    );
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
  });

  it('exposes the request id and rate limit headers to browser scripts', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/health/live',
      headers: { origin: 'https://shop.example' },
    });
    const exposed = String(res.headers['access-control-expose-headers']).toLowerCase();
    for (const name of [
      'x-request-id',
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
    ]) {
      expect(exposed).toContain(name);
    }
  });

  it('sends helmet security headers on answers and on problems alike', async () => {
    for (const url of ['/health/live', '/api/v1/nowhere']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });
});

describe('CORS restricted by MERCATO_CORS_ORIGINS', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_CORS_ORIGINS: 'https://shop.example, https://admin.example' });
  });
  afterAll(() => t?.close());

  it('allows a listed origin by name', async () => {
    const res = await t.app.inject(preflight('https://admin.example'));
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://admin.example');
    expect(String(res.headers.vary)).toMatch(/origin/i);
  });

  it('gives an unlisted origin no CORS grant', async () => {
    const res = await t.app.inject(preflight('https://evil.example'));
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
