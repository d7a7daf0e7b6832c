import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestApp } from '../testing/index.ts';
import { withSystem } from './tenant-context.ts';

/**
 * The guard every module's migration must pass: a table that holds tenant rows (it has a
 * `tenant_id` column) has row-level security on and a policy that reads `app.tenant_id`, so a
 * query that forgets its `where tenant_id` still sees one tenant only. A new module's table
 * that misses either fails here by name.
 */
const t = await startTestApp();
afterAll(() => t.close());

type TableRow = { table: string; rls: boolean; policies: string[] };

describe('row-level security', () => {
  it('covers every table with a tenant_id column, in every module schema', async () => {
    const rows = await withSystem(
      t.ctx.db.kysely,
      async (trx) =>
        (
          await sql<TableRow>`
          select n.nspname || '.' || c.relname as table,
                 c.relrowsecurity as rls,
                 coalesce(array_agg(pg_get_expr(p.polqual, p.polrelid)) filter (where p.polname is not null), '{}') as policies
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
          left join pg_policy p on p.polrelid = c.oid
          where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
          group by 1, 2
          order by 1`.execute(trx)
        ).rows,
    );
    const tables = rows.map((r) => r.table);
    // The modules whose tables this guards (a schema renamed or dropped would empty the check).
    for (const schema of ['identity', 'wal', 'catalog', 'inventory', 'cart']) {
      expect(
        tables.some((name) => name.startsWith(`${schema}.`)),
        schema,
      ).toBe(true);
    }
    const unguarded = rows
      .filter((r) => !r.rls || !r.policies.some((qual) => qual.includes('app.tenant_id')))
      .map((r) => r.table);
    expect(unguarded).toEqual([]);
  });
});
