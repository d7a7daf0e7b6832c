import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Seeded, seedExceptions, spreadExceptions } from './exceptions-seed-fixtures.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { CATEGORIES, INTERFACE_TYPES, SEVERITIES, STATUSES } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;
let rows: Seeded[];
const base = Date.now() - 60_000;
const OPEN = ['NEW', 'ACKNOWLEDGED', 'RETRY_IN_PROGRESS', 'RETRIED_FAILED'];

beforeAll(async () => {
  t = await startExceptionsApp();
  [a, b] = [await createOpsTenant(t, 'exsum-a'), await createOpsTenant(t, 'exsum-b')];
  rows = await seedExceptions(t, a.id, spreadExceptions(base));
  await seedExceptions(t, b.id, [
    { transactionId: 'TX-1000', severity: 'CRITICAL' },
    { transactionId: 'TX-B-ONLY', status: 'RESOLVED', resolvedAt: new Date() },
  ]);
});
afterAll(() => t?.close());

const get = (url: string, headers: Record<string, string>) => send(t.app, 'GET', url, headers);
const lastSeen = (r: Seeded) => r.lastSeen.getTime();
/** Oldest first seen first, then the lowest id (as the summary picks among equals). */
const byFirstSeen = (x: Seeded, y: Seeded) =>
  x.firstSeen.getTime() - y.firstSeen.getTime() || (x.id < y.id ? -1 : 1);

describe('GET /exceptions/summary', () => {
  const from = new Date(base - 20 * 60_000);
  const to = new Date(base + 60_000);
  const inRange = (r: Seeded) => lastSeen(r) >= from.getTime() && lastSeen(r) < to.getTime();
  const countBy = <K extends string>(list: Seeded[], keys: readonly K[], of: (r: Seeded) => string) =>
    Object.fromEntries(keys.map((k) => [k, list.filter((r) => of(r) === k).length]));

  it('counts what the rows hold, by every dimension and hour, with the oldest open and the mean time to resolve', async () => {
    const answer = await get(
      `/api/v1/exceptions/summary?from=${from.toISOString()}&to=${to.toISOString()}`,
      a.operator,
    );
    expect(answer.statusCode, answer.body).toBe(200);
    const s = answer.json();
    const scoped = rows.filter(inRange);
    expect(scoped.length).toBeGreaterThan(10);
    expect(s.total).toBe(scoped.length);
    expect(s.byInterfaceType).toEqual(countBy(scoped, INTERFACE_TYPES, (r) => r.interfaceType));
    expect(s.bySeverity).toEqual(countBy(scoped, SEVERITIES, (r) => r.severity));
    expect(s.byStatus).toEqual(countBy(scoped, STATUSES, (r) => r.status));
    expect(s.byCategory).toEqual(countBy(scoped, CATEGORIES, (r) => r.category));
    expect(s.bucket).toBe('hour');
    const hours = new Map<string, number>();
    for (const r of scoped) {
      const start = new Date(Math.floor(lastSeen(r) / 3_600_000) * 3_600_000).toISOString();
      hours.set(start, (hours.get(start) ?? 0) + 1);
    }
    for (const bucket of s.buckets) expect(bucket.count, bucket.start).toBe(hours.get(bucket.start) ?? 0);
    expect(s.buckets.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(scoped.length);

    const open = scoped.filter((r) => OPEN.includes(r.status)).sort(byFirstSeen);
    expect(s.oldestOpen).toMatchObject({ transactionId: open[0]!.transactionId, status: open[0]!.status });
    expect(s.oldestOpen.ageSeconds).toBeGreaterThanOrEqual(
      Math.floor((Date.now() - open[0]!.firstSeen.getTime()) / 1000) - 5,
    );

    const resolved = rows.filter((r) => r.resolvedAt && r.resolvedAt >= from && r.resolvedAt < to);
    expect(resolved.length).toBeGreaterThan(0);
    expect(s.resolved).toBe(resolved.length);
    const mean =
      resolved.reduce((n, r) => n + (r.resolvedAt!.getTime() - r.firstSeen.getTime()) / 1000, 0) /
      resolved.length;
    expect(s.meanTimeToResolveSeconds).toBeCloseTo(mean, 2);
  });

  it('takes the list filters, days as buckets, and the last 24 hours by default', async () => {
    const filtered = await get(
      `/api/v1/exceptions/summary?from=${from.toISOString()}&to=${to.toISOString()}&severity=HIGH,CRITICAL&bucket=day`,
      a.operator,
    );
    const high = rows.filter((r) => inRange(r) && ['HIGH', 'CRITICAL'].includes(r.severity));
    expect(filtered.json()).toMatchObject({
      total: high.length,
      bucket: 'day',
      bySeverity: { LOW: 0, MEDIUM: 0 },
    });
    const byDefault = (await get('/api/v1/exceptions/summary', a.operator)).json();
    expect(Date.parse(byDefault.to) - Date.parse(byDefault.from)).toBe(24 * 3_600_000);
    // Every seeded row was last seen within the hour.
    expect(byDefault.total).toBe(rows.length);
    expect(byDefault.buckets.length).toBeGreaterThanOrEqual(24);
    const theirs = (await get('/api/v1/exceptions/summary', b.operator)).json();
    expect([theirs.total, theirs.bySeverity.CRITICAL, theirs.resolved]).toEqual([2, 1, 1]);
  });

  it('answers 400 for a range over 90 days, a bad bucket or a bad filter', async () => {
    const long = new Date(Date.now() - 91 * 86_400_000).toISOString();
    for (const [query, pointer] of [
      [`from=${long}`, '/from'],
      ['bucket=week', '/bucket'],
      ['status=OPEN', '/status'],
      [`from=${new Date().toISOString()}&to=${new Date(Date.now() - 1000).toISOString()}`, '/to'],
    ]) {
      const answer = await get(`/api/v1/exceptions/summary?${query}`, a.operator);
      expect(answer.statusCode, query).toBe(400);
      expect(
        answer.json().errors.map((e: { pointer: string }) => e.pointer),
        query,
      ).toContain(pointer);
    }
  });
});

describe('GET /exceptions/summary at the edges of time', () => {
  const summary = (query: string) => get(`/api/v1/exceptions/summary?${query}`, a.operator);
  const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

  it('answers 400 for a range an offset takes out of the years 0001 to 9999', async () => {
    for (const [query, pointer] of [
      [q({ from: '0001-01-01T00:00:00+01:00', to: '0001-01-02T00:00:00Z' }), '/from'],
      [q({ to: '0001-01-01T10:00:00Z' }), '/to'],
      [q({ from: '9999-12-31T00:00:00Z', to: '9999-12-31T23:59:59-01:00' }), '/to'],
    ] as Array<[string, string]>) {
      const answer = await summary(query);
      expect(answer.statusCode, `${query} ${answer.body}`).toBe(400);
      expect(answer.json().code).toBe('VALIDATION_FAILED');
      expect(answer.json().errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    }
  });
});

describe('GET /exceptions/summary access', () => {
  it('is for operators and admins, or a key with exceptions:read', async () => {
    expect((await get('/api/v1/exceptions/summary', a.admin)).statusCode).toBe(200);
    expect((await get('/api/v1/exceptions/summary', a.staff)).statusCode).toBe(403);
    expect((await get('/api/v1/exceptions/summary', a.writer)).statusCode).toBe(403);
    expect((await get('/api/v1/exceptions/summary', {})).statusCode).toBe(401);
  });
});
