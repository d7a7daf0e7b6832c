import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../platform/testing/index.ts';
import { asTenant, exceptionUrl, type SeedInput, seedExceptions } from './exceptions-seed-fixtures.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
  writeInbound,
} from './exceptions-test-fixtures.ts';
import { planSummary } from './summary-rollup.ts';
import { CATEGORIES, INTERFACE_TYPES, SEVERITIES, STATUSES } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;

beforeAll(async () => {
  t = await startExceptionsApp();
  [a, b] = [await createOpsTenant(t, 'rollup-a'), await createOpsTenant(t, 'rollup-b')];
});
afterAll(() => t?.close());

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const get = (url: string, headers: Record<string, string>) => send(t.app, 'GET', url, headers);

/**
 * The tenant's rollup sums that differ from what its exceptions make them, both ways: computed
 * here from the rows, independently of migrations 0032 and 0034's functions. Empty when they agree.
 */
async function rollupDisagreements(tenantId: string) {
  return asTenant(t, tenantId, async (trx) => {
    const { rows } = await sql<Record<string, unknown>>`
      with parts as (
        select w.width, date_bin(w.step, e.last_seen, timestamptz '2000-01-01Z') as start,
          e.interface_type, e.severity, e.category, e.status, 1 as exceptions, 0 as resolved, 0::bigint as resolve_ms
        from exceptions.exceptions e, (values ('hour', interval '1 hour'), ('day', interval '1 day')) w(width, step)
        union all
        select w.width, date_bin(w.step, e.resolved_at, timestamptz '2000-01-01Z'),
          e.interface_type, e.severity, e.category, e.status, 0, 1,
          round(extract(epoch from e.resolved_at - e.first_seen) * 1000)::bigint
        from exceptions.exceptions e, (values ('hour', interval '1 hour'), ('day', interval '1 day')) w(width, step)
        where e.resolved_at is not null
      ), counts as (
        select width, start, interface_type, severity, category, status, sum(exceptions)::bigint as exceptions,
          sum(resolved)::bigint as resolved, sum(resolve_ms)::bigint as resolve_ms
        from parts group by 1, 2, 3, 4, 5, 6
      ), totals as (
        select width, start, d.dimension, d.value, sum(exceptions)::bigint as exceptions,
          sum(resolved)::bigint as resolved, sum(resolve_ms)::bigint as resolve_ms
        from counts cross join lateral (values ('interface_type', interface_type), ('severity', severity),
          ('category', category), ('status', status)) d(dimension, value)
        group by 1, 2, 3, 4
      ), expected as (
        select width, start, interface_type || '/' || severity || '/' || category || '/' || status as key,
          exceptions, resolved, resolve_ms from counts
        union all
        select width, start, dimension || '=' || value, exceptions, resolved, resolve_ms from totals
      ), stored as (
        select 'hour' as width, hour as start, interface_type || '/' || severity || '/' || category || '/' || status as key,
          exceptions, resolved, resolve_ms from exceptions.hourly_counts
        union all
        select 'day', day, interface_type || '/' || severity || '/' || category || '/' || status,
          exceptions, resolved, resolve_ms from exceptions.daily_counts
        union all
        select 'hour', hour, dimension || '=' || value, exceptions, resolved, resolve_ms from exceptions.hourly_totals
        union all
        select 'day', day, dimension || '=' || value, exceptions, resolved, resolve_ms from exceptions.daily_totals
      ), actual as (
        -- A key's rows count as their sum (appended deltas until the fold, migration 0034).
        select width, start, key, sum(exceptions)::bigint as exceptions, sum(resolved)::bigint as resolved,
          sum(resolve_ms)::bigint as resolve_ms
        from stored group by 1, 2, 3
        having sum(exceptions) <> 0 or sum(resolved) <> 0 or sum(resolve_ms) <> 0
      )
      (select 'missing' as what, * from (select * from expected except all select * from actual) m)
      union all
      (select 'extra', * from (select * from actual except all select * from expected) x)`.execute(trx);
    return rows;
  });
}

/** The tenant's keys with more than one row, or with a row that counts nothing: none after a fold. */
/** The tenant's rollup rows appended and not folded yet, over the four tables. */
const appendedRows = (tenantId: string) =>
  asTenant(t, tenantId, async (trx) => {
    const { rows } = await sql<{ n: number }>`
      select ((select count(*) from exceptions.hourly_counts where not folded)
        + (select count(*) from exceptions.daily_counts where not folded)
        + (select count(*) from exceptions.hourly_totals where not folded)
        + (select count(*) from exceptions.daily_totals where not folded))::int as n`.execute(trx);
    return rows[0]!.n;
  });

const unfoldedKeys = (tenantId: string) =>
  asTenant(t, tenantId, async (trx) => {
    const { rows } = await sql<{ n: number }>`
      select ((select count(*) from (select 1 from exceptions.hourly_counts
          group by tenant_id, hour, interface_type, severity, category, status
          having count(*) > 1 or bool_or(exceptions = 0 and resolved = 0 and resolve_ms = 0)) k)
        + (select count(*) from (select 1 from exceptions.daily_counts
          group by tenant_id, day, interface_type, severity, category, status
          having count(*) > 1 or bool_or(exceptions = 0 and resolved = 0 and resolve_ms = 0)) k)
        + (select count(*) from (select 1 from exceptions.hourly_totals group by tenant_id, hour, dimension, value
          having count(*) > 1 or bool_or(exceptions = 0 and resolved = 0 and resolve_ms = 0)) k)
        + (select count(*) from (select 1 from exceptions.daily_totals group by tenant_id, day, dimension, value
          having count(*) > 1 or bool_or(exceptions = 0 and resolved = 0 and resolve_ms = 0)) k))::int as n`.execute(
      trx,
    );
    return rows[0]!.n;
  });

const rollupSize = (tenantId: string) =>
  asTenant(t, tenantId, async (trx) => {
    const { rows } = await sql<{ n: number }>`
      select ((select count(*) from exceptions.hourly_counts) + (select count(*) from exceptions.daily_counts)
        + (select count(*) from exceptions.hourly_totals) + (select count(*) from exceptions.daily_totals))::int as n`.execute(
      trx,
    );
    return rows[0]!.n;
  });

const lastSeenOf = (tenantId: string, transactionId: string) =>
  asTenant(t, tenantId, async (trx) => {
    const row = await trx
      .selectFrom('exceptions.exceptions')
      .select('last_seen')
      .where('transaction_id', '=', transactionId)
      .executeTakeFirst();
    return row ? new Date(row.last_seen).getTime() : undefined;
  });

describe('the rollup of exceptions (migrations 0032 and 0034)', () => {
  it('agrees with the rows after captures, repeats that move last_seen, acknowledge and resolve, and the purge', async () => {
    const now = Date.now();
    await seedExceptions(t, a.id, [
      { transactionId: 'R-1', lastSeen: new Date(now - 5 * HOUR), severity: 'HIGH' },
      {
        transactionId: 'R-2',
        lastSeen: new Date(now - 30 * HOUR),
        category: 'TIMEOUT',
        interfaceType: 'COLLECTION',
      },
      { transactionId: 'R-3', lastSeen: new Date(now - 3 * DAY), status: 'ACKNOWLEDGED' },
      {
        transactionId: 'R-4',
        lastSeen: new Date(now - 2 * DAY),
        firstSeen: new Date(now - 4 * DAY),
        status: 'RESOLVED',
        resolvedAt: new Date(now - DAY - 1234),
      },
      { transactionId: 'R-5', lastSeen: new Date(now - 50 * HOUR), severity: 'CRITICAL' },
    ]);
    await seedExceptions(t, b.id, [{ transactionId: 'R-1', lastSeen: new Date(now - 5 * HOUR) }]);
    expect(await rollupSize(a.id)).toBeGreaterThan(0);
    expect(await rollupDisagreements(a.id)).toEqual([]);

    // Captured through the WAL: five new exceptions (one statement), and repeats of,
    // whose last_seen moves from hours ago to now (out of their hour and day, into the current ones).
    const written = await writeInbound(t, a, [
      {
        type: 'OrderRejected',
        data: { transactionId: 'C-1', reason: 'credit limit reached', orderId: 'O-1' },
      },
      {
        type: 'OrderCancelled',
        data: { transactionId: 'C-2', reason: 'cancelled by the ERP', orderId: 'O-2' },
      },
      {
        type: 'CollectionRejected',
        data: { transactionId: 'C-3', reason: 'bank answered 503', collectionId: 'K-1' },
      },
      {
        type: 'DistributionFailed',
        data: { transactionId: 'C-4', reason: 'carrier timed out', destination: 'D' },
      },
      {
        type: 'ValidationError',
        data: { transactionId: 'C-5', reason: 'bad postcode', errors: [{ field: 'zip', message: 'format' }] },
      },
      {
        type: 'OrderRejected',
        data: { transactionId: 'R-1', reason: 'credit limit reached', orderId: 'O-3' },
      },
      {
        type: 'CollectionRejected',
        data: { transactionId: 'R-2', reason: 'bank timed out', collectionId: 'K-2' },
      },
    ]);
    expect(written.statusCode, written.body).toBe(202);
    await until(async () => (await lastSeenOf(a.id, 'C-5')) !== undefined, 'captures');
    await until(async () => ((await lastSeenOf(a.id, 'R-2')) ?? 0) > now - HOUR, 'repeats');
    await until(async () => ((await lastSeenOf(a.id, 'R-1')) ?? 0) > now - HOUR, 'repeats');
    expect(await rollupDisagreements(a.id)).toEqual([]);

    // Status changes and resolved_at through the routes, one by one and in bulk.
    const put = (id: string, change: string, body: unknown) =>
      send(t.app, 'PUT', exceptionUrl(id, `/${change}`), a.operator, body);
    expect((await put('R-5', 'acknowledge', { note: 'looking' })).statusCode).toBe(200);
    expect((await put('R-3', 'resolve', { resolution: 'fixed' })).statusCode).toBe(200);
    expect((await put('C-1', 'resolve', { resolution: 'fixed' })).statusCode).toBe(200);
    const bulk = await send(t.app, 'POST', '/api/v1/exceptions/bulk', a.operator, {
      action: 'resolve',
      filter: { interfaceType: 'COLLECTION' },
      resolution: 'fixed',
    });
    expect(bulk.statusCode, bulk.body).toBe(200);
    expect(await rollupDisagreements(a.id)).toEqual([]);

    // Retention archives then deletes what was resolved long enough ago. An update of nothing the
    // rollup counts (updated_at) leaves it as it is.
    await asTenant(t, a.id, (trx) =>
      trx
        .updateTable('exceptions.exceptions')
        .set({ updated_at: new Date(now - 40 * DAY) })
        .where('transaction_id', 'in', ['R-3', 'R-4'])
        .execute(),
    );
    expect(await rollupDisagreements(a.id)).toEqual([]);
    expect(await t.exceptions.purge({ tenantId: a.id })).toMatchObject({ archived: 2 });
    expect(await lastSeenOf(a.id, 'R-4')).toBeUndefined();
    expect(await rollupDisagreements(a.id)).toEqual([]);
    expect(await rollupDisagreements(b.id)).toEqual([]);

    // Folded: one row per key, none that counts nothing, the same sums.
    expect(await unfoldedKeys(a.id)).toBeGreaterThan(0);
    await t.exceptions.foldRollup();
    expect(await unfoldedKeys(a.id)).toBe(0);
    expect(await unfoldedKeys(b.id)).toBe(0);
    expect(await rollupDisagreements(a.id)).toEqual([]);
    expect(await rollupDisagreements(b.id)).toEqual([]);
  });

  it('counts every capture once when captures and folds run at the same time', async () => {
    const c = await createOpsTenant(t, 'rollup-fold');
    const batch = (n: number) =>
      writeInbound(
        t,
        c,
        Array.from({ length: 50 }, (_, i) => ({
          type: 'OrderRejected',
          data: { transactionId: `F-${n}-${i % 40}`, reason: `declined ${i % 3}`, orderId: `O-${n}-${i}` },
        })),
      );
    // The job, and the tenant's fold on connections of its own, racing it and each other.
    const folds = async () => {
      for (let i = 0; i < 10; i++) {
        await t.exceptions.foldRollup();
        await asTenant(t, c.id, (trx) => sql`select exceptions.fold_counts()`.execute(trx));
      }
    };
    const written = await Promise.all([batch(1), batch(2), batch(3), batch(4), folds(), folds(), folds()]);
    for (const w of written.slice(0, 4)) expect((w as { statusCode: number }).statusCode).toBe(202);
    // All 200 events captured, the 40 repeats included (each repeat updates its exception, which
    // appends counts): a repeat landing after the folds below would leave a key unfolded.
    const occurrences = () =>
      asTenant(t, c.id, async (trx) => {
        const { rows } = await sql<{ n: number }>`
          select coalesce(sum(occurrences), 0)::int as n from exceptions.exceptions`.execute(trx);
        return rows[0]!.n;
      });
    await until(async () => (await occurrences()) === 200, 'captures and repeats');
    expect((await get('/api/v1/exceptions/summary', c.operator)).json().total).toBe(160);
    expect(await rollupDisagreements(c.id)).toEqual([]);
    // Two folds at once fold every appended row between them, but may each leave a row of one key
    // (rows of a key count as their sum; the next append to that key folds them together): no
    // appended row is left, and the sums agree.
    await Promise.all([
      t.exceptions.foldRollup(),
      asTenant(t, c.id, (trx) => sql`select exceptions.fold_counts()`.execute(trx)),
    ]);
    expect(await appendedRows(c.id)).toBe(0);
    expect(await rollupDisagreements(c.id)).toEqual([]);
    expect((await get('/api/v1/exceptions/summary', c.operator)).json().total).toBe(160);
  });

  it("keeps each tenant to its own counts: another tenant's are neither seen nor written", async () => {
    await asTenant(t, b.id, async (trx) => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from exceptions.hourly_totals where tenant_id = ${a.id}`.execute(trx);
      expect(rows[0]!.n).toBe(0);
    });
    await expect(
      asTenant(t, b.id, (trx) =>
        sql`insert into exceptions.hourly_totals (tenant_id, hour, dimension, value, exceptions)
          values (${a.id}, date_bin('1 hour', now(), timestamptz '2000-01-01Z'), 'status', 'NEW', 1000)`.execute(
          trx,
        ),
      ),
    ).rejects.toThrow(/row-level security/);
    const theirs = (await get('/api/v1/exceptions/summary', b.operator)).json();
    expect(theirs.total).toBe(1);
  });
});

/** mulberry32: a small seeded generator, so a failing case can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const SEED = Number(process.env['ROLLUP_TEST_SEED'] ?? 13_032);

describe('GET /exceptions/summary from the rollup', () => {
  it(`answers as the rows do over random ranges, buckets and filters (seed ${SEED})`, async () => {
    const c = await createOpsTenant(t, 'rollup-c');
    const rnd = random(SEED);
    const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)]!;
    const now = Date.now();
    // Every row has the same customer: filtering on it names every row, but a filter the rollup
    // does not carry reads the rows, so the two answers compare the rollup with the rows.
    const rows: SeedInput[] = Array.from({ length: 300 }, (_, i) => {
      const lastSeen = new Date(now - Math.floor(rnd() * 6 * DAY));
      const status = pick(STATUSES);
      const resolved = status === 'RESOLVED' || status === 'CLOSED' || rnd() < 0.1;
      return {
        transactionId: `RND-${i}`,
        customerId: 'same',
        interfaceType: pick(INTERFACE_TYPES),
        severity: pick(SEVERITIES),
        category: pick(CATEGORIES),
        status,
        lastSeen,
        firstSeen: new Date(lastSeen.getTime() - Math.floor(rnd() * 2 * DAY)),
        resolvedAt: resolved
          ? new Date(Math.min(now, lastSeen.getTime() + Math.floor(rnd() * 10 * HOUR)))
          : null,
      };
    });
    await seedExceptions(t, c.id, rows);
    const some = (values: readonly string[]) => [pick(values), pick(values)].join(',');
    const seen = { counted: 0, rawOnly: 0, hours: 0, days: 0, takenAway: 0 };
    for (let q = 0; q < 24; q++) {
      // Ranges from minutes to days, on the hour or not, up to now or beyond, in the past.
      const span = pick([20 * 60_000, 90 * 60_000, 5 * HOUR, DAY, 2.5 * DAY, 6 * DAY]);
      const to = q % 3 === 0 ? now + 60_000 : now - Math.floor(rnd() * 2 * DAY);
      const from = q % 4 === 1 ? Math.floor((to - span) / HOUR) * HOUR : to - span;
      const params = new URLSearchParams({
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        bucket: pick(['hour', 'day']),
      });
      if (rnd() < 0.5) params.set('status', some(STATUSES));
      if (rnd() < 0.3) params.set('severity', some(SEVERITIES));
      if (rnd() < 0.3) params.set('category', some(CATEGORIES));
      if (rnd() < 0.3) params.set('interfaceType', some(INTERFACE_TYPES));
      const plan = planSummary(
        {},
        { from: new Date(from), to: new Date(to) },
        params.get('bucket') as 'hour',
      );
      seen.rawOnly += plan.hours.length === 0 && !plan.days ? 1 : 0;
      seen.hours += plan.hours.length > 0 ? 1 : 0;
      seen.days += plan.days ? 1 : 0;
      seen.takenAway += plan.raw.some((r) => r.sign === -1) ? 1 : 0;
      const rolled = await get(`/api/v1/exceptions/summary?${params}`, c.operator);
      params.set('customerId', 'same');
      const raw = await get(`/api/v1/exceptions/summary?${params}`, c.operator);
      expect(rolled.statusCode, rolled.body).toBe(200);
      expect(raw.statusCode, raw.body).toBe(200);
      const [x, y] = [rolled.json(), raw.json()];
      // The age is counted from each statement's own clock.
      expect(Math.abs((x.oldestOpen?.ageSeconds ?? 0) - (y.oldestOpen?.ageSeconds ?? 0))).toBeLessThanOrEqual(
        2,
      );
      for (const s of [x, y]) if (s.oldestOpen) s.oldestOpen.ageSeconds = 0;
      expect(x, `query ${q}: ${params}`).toEqual(y);
      seen.counted += x.total > 0 ? 1 : 0;
    }
    // The queries went every way a summary can read, and most counted something.
    expect(
      Math.min(seen.rawOnly, seen.hours, seen.days, seen.takenAway),
      JSON.stringify(seen),
    ).toBeGreaterThan(0);
    expect(seen.counted, JSON.stringify(seen)).toBeGreaterThan(12);
  });
});
