import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestApp } from '../testing/index.ts';
import { jsonObjects, jsonRows } from './json-rows.ts';

const t = await startTestApp();
afterAll(() => t.close());

describe('jsonRows', () => {
  it('reads rows sent as arrays back as typed columns, JSON null as NULL in every column', async () => {
    const columns = [
      ['id', 'uuid'],
      ['name', 'text'],
      ['n', 'bigint'],
      ['ok', 'boolean'],
      ['at', 'timestamptz'],
      ['data', 'jsonb'],
    ] as const;
    const { rows } = await sql<{
      id: string;
      name: string | null;
      n: string | null;
      ok: boolean | null;
      at: Date | string | null;
      data: unknown;
      data_type: string | null;
    }>`
      select x.id, x.name, x.n::text as n, x.ok, x.at, x.data, jsonb_typeof(x.data) as data_type
      from ${jsonRows(columns, [
        [
          '0190a4b2-7c1e-7000-8000-000000000001',
          'quote " and \\ backslash',
          9007199254740993n.toString(),
          true,
          '2026-12-03T08:00:00.123Z',
          { b: 1, a: [null, 'x'] },
        ],
        ['0190a4b2-7c1e-7000-8000-000000000002', null, null, null, null, null],
        ['0190a4b2-7c1e-7000-8000-000000000003', '', 0, false, '2026-12-03T08:00:00Z', 'text'],
      ])} as x
      order by x.id`.execute(t.ctx.db.kysely);
    expect(rows.map((r) => ({ ...r, at: r.at === null ? null : new Date(r.at).toISOString() }))).toEqual([
      {
        id: '0190a4b2-7c1e-7000-8000-000000000001',
        name: 'quote " and \\ backslash',
        n: '9007199254740993',
        ok: true,
        at: '2026-12-03T08:00:00.123Z',
        data: { a: [null, 'x'], b: 1 },
        data_type: 'object',
      },
      {
        id: '0190a4b2-7c1e-7000-8000-000000000002',
        name: null,
        n: null,
        ok: null,
        at: null,
        data: null,
        data_type: null,
      },
      {
        id: '0190a4b2-7c1e-7000-8000-000000000003',
        name: '',
        n: '0',
        ok: false,
        at: '2026-12-03T08:00:00.000Z',
        data: 'text',
        data_type: 'string',
      },
    ]);
  });

  it('reads objects by the columns named, a missing property as NULL (jsonObjects)', async () => {
    const { rows } = await sql<{ id: string; name: string | null; n: number | null }>`
      select * from ${jsonObjects(
        [
          ['id', 'uuid'],
          ['name', 'text'],
          ['n', 'integer'],
        ],
        [
          { n: 2, id: '0190a4b2-7c1e-7000-8000-000000000001', name: 'a', other: 'ignored' },
          { id: '0190a4b2-7c1e-7000-8000-000000000002' },
        ],
      )} as x order by x.id`.execute(t.ctx.db.kysely);
    expect(rows).toEqual([
      { id: '0190a4b2-7c1e-7000-8000-000000000001', name: 'a', n: 2 },
      { id: '0190a4b2-7c1e-7000-8000-000000000002', name: null, n: null },
    ]);
  });

  it.each(['auto', 'force_generic_plan'])(
    'tells the planner how many rows it holds: an update from two rows looks them up by index in a table of 5,000 (plan_cache_mode %s)',
    async (mode) => {
      const plan = await t.ctx.db.kysely.transaction().execute(async (trx) => {
        await sql`select set_config('plan_cache_mode', ${mode}, true)`.execute(trx);
        await sql`create temporary table json_rows_plan (id uuid primary key, n integer not null, pad text)
        on commit drop`.execute(trx);
        await sql`insert into json_rows_plan
        select gen_random_uuid(), 0, repeat('x', 60) from generate_series(1, 5000)`.execute(trx);
        await sql`analyze json_rows_plan`.execute(trx);
        const { rows } = await sql<{ 'QUERY PLAN': string }>`explain
        update json_rows_plan t set n = t.n + v.d
        from ${jsonRows(
          [
            ['id', 'uuid'],
            ['d', 'integer'],
          ],
          [
            ['0190a4b2-7c1e-7000-8000-000000000001', 1],
            ['0190a4b2-7c1e-7000-8000-000000000002', 1],
          ],
        )} as v
        where t.id = v.id`.execute(trx);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      expect(plan).toMatch(/Index Scan using json_rows_plan_pkey/);
      expect(plan).not.toMatch(/Seq Scan on json_rows_plan/);
    },
  );

  it('answers no rows for none, and refuses a column name or type that is not a plain identifier, or an array type', async () => {
    const { rows } = await sql`select * from ${jsonRows([['id', 'uuid']], [])} as x`.execute(t.ctx.db.kysely);
    expect(rows).toEqual([]);
    expect(() => jsonRows([['id; drop table x', 'uuid']], [])).toThrow(/bad column/);
    expect(() => jsonRows([['id', 'uuid) as id, (select 1']], [])).toThrow(/bad column/);
    expect(() => jsonRows([['tags', 'text[]']], [])).toThrow(/bad column/);
  });
});
