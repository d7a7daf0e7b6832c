import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, testDatabaseKind } from '../testing/index.ts';

/** The sample lines of one metric in Prometheus text format, with their labels parsed. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .map((line) => {
      const match = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line)!;
      const labels = Object.fromEntries(
        [...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      );
      return { labels, value: Number(match[2]) };
    });
}

describe('/metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  const scrape = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.body;
  };

  it('records request durations by route template and status, never by raw path', async () => {
    await t.app.inject({ method: 'GET', url: '/health/live' });
    await t.app.inject({ method: 'GET', url: '/api/v1/users/0190d4c5-7f8b-7c3e-9a4b-123456789abc' });
    await t.app.inject({ method: 'GET', url: '/api/v1/no/such/route' });
    const counts = samples(await scrape(), 'mercato_http_request_duration_seconds_count');
    const count = (route: string, status: string) =>
      counts.find((s) => s.labels['route'] === route && s.labels['status_code'] === status)?.value;
    expect(count('/health/live', '200')).toBe(1);
    expect(count('/api/v1/users/:id', '401')).toBe(1);
    expect(count('unmatched', '404')).toBe(1);
    expect(counts.some((s) => s.labels['route']?.includes('0190d4c5'))).toBe(false);
    expect(counts.some((s) => s.labels['route']?.includes('no/such'))).toBe(false);
  });

  it('exposes histogram buckets for the request duration', async () => {
    await t.app.inject({ method: 'GET', url: '/health/live' });
    const buckets = samples(await scrape(), 'mercato_http_request_duration_seconds_bucket').filter(
      (s) => s.labels['route'] === '/health/live',
    );
    expect(buckets.map((s) => s.labels['le'])).toContain('+Inf');
    expect(buckets.every((s) => s.labels['method'] === 'GET')).toBe(true);
  });

  it('exposes process and Node.js runtime metrics', async () => {
    const text = await scrape();
    for (const name of [
      'mercato_process_cpu_seconds_total',
      'mercato_process_resident_memory_bytes',
      'mercato_nodejs_heap_size_used_bytes',
      'mercato_nodejs_eventloop_lag_seconds',
    ]) {
      expect(samples(text, name).length, name).toBeGreaterThan(0);
    }
  });

  it('exposes the database pool by state', async () => {
    const pool = samples(await scrape(), 'mercato_db_pool_connections');
    expect(pool.map((s) => s.labels['state']).sort()).toEqual(['idle', 'total', 'waiting']);
    const total = pool.find((s) => s.labels['state'] === 'total')!.value;
    if (testDatabaseKind() === 'pglite') expect(total).toBe(1);
    else expect(total).toBeGreaterThanOrEqual(1);
  });
});

describe('/metrics with MERCATO_METRICS_TOKEN', () => {
  const TOKEN = 'scrape-7b1f0c2e9a4d4f57b3e8c6a1d2f09e44';
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_METRICS_TOKEN: TOKEN });
  });
  afterAll(() => t?.close());

  const scrape = (headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url: '/metrics', headers });

  it('answers 401 problem+json without the token, or with another one', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: TOKEN },
      { 'x-api-key': TOKEN },
    ];
    for (const headers of attempts) {
      const res = await scrape(headers);
      expect(res.statusCode, JSON.stringify(headers)).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.json().code).toBe('UNAUTHENTICATED');
      expect(res.body).not.toContain('mercato_');
    }
  });

  it('serves the metrics to a scraper sending Authorization: Bearer <token>', async () => {
    const res = await scrape({ authorization: `Bearer ${TOKEN}` });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(samples(res.body, 'mercato_process_cpu_seconds_total').length).toBe(1);
  });

  it('is open without a token configured', async () => {
    const open = await startTestApp();
    try {
      expect((await open.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    } finally {
      await open.close();
    }
  });
});
