import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { addUser } from '../../identity/users/user-test-fixtures.ts';
import { startTestApp, testDatabaseKind } from '../testing/index.ts';
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
