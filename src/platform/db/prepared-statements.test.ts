import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { addUser } from '../../identity/users/user-test-fixtures.ts';
import { startTestApp, testDatabaseKind } from '../testing/index.ts';
import { prepareStatements } from './prepared-statements.ts';
import { withTenant } from './tenant-context.ts';

const t = await startTestApp();
afterAll(() => t.close());

describe.runIf(testDatabaseKind() === 'postgres')('prepared statements on PostgreSQL', () => {
  it("prepares a repeated query once per connection, and its plan never shows one tenant another's rows", async () => {
    const [a, b] = [await createTestTenant(t, 'prepared-a'), await createTestTenant(t, 'prepared-b')];
    // a has its admin; b its admin and two more.
    await addUser(t, b.id, 'second@b.test', 'staff');
    await addUser(t, b.id, 'third@b.test', 'customer');
    // No tenant filter: row-level security alone decides. Run far past the five custom plans
    // after which PostgreSQL may switch to a generic plan, alternating tenants.
    const count = (tenantId: string) =>
      withTenant(t.ctx.db.kysely, tenantId, async (trx) => {
        const rows = await sql<{ n: number; prepared: boolean }>`
          select (select count(*)::int from identity.users where ${1}::int = 1) as n,
                 exists (select 1 from pg_prepared_statements
                         where statement like '%from identity.users where $1::int = 1%') as prepared`.execute(
          trx,
        );
        return rows.rows[0]!;
      });
    for (let i = 0; i < 12; i++) {
      const [ra, rb] = [await count(a.id), await count(b.id)];
      expect(ra.n).toBe(1);
      expect(rb.n).toBe(3);
      if (i > 0) expect(ra.prepared && rb.prepared).toBe(true);
    }
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('a prepared statement whose table changed shape', () => {
  it('runs again, prepared anew, outside a transaction; inside one it fails that transaction once', async () => {
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    try {
      prepareStatements(client);
      await client.query('create temporary table reshaped (a int)');
      await client.query('insert into reshaped values (1)');
      const read = () => client.query('select * from reshaped where a = $1', [1]);
      expect((await read()).rows).toEqual([{ a: 1 }]);
      await client.query('alter table reshaped add column b int');
      // Autocommit: run again transparently with the new shape.
      expect((await read()).rows).toEqual([{ a: 1, b: null }]);
      await client.query('alter table reshaped add column c int');
      await client.query('begin');
      await expect(read()).rejects.toMatchObject({ code: '0A000' });
      await client.query('rollback');
      // The connection prepared anew: the next transaction reads the new shape.
      await client.query('begin');
      expect((await read()).rows).toEqual([{ a: 1, b: null, c: null }]);
      await client.query('commit');
    } finally {
      await client.end();
    }
  });
});
