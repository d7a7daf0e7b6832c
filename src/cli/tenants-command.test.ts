import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SYSTEM_TOPICS } from '../platform/events/index.ts';
import { startTestApp, testDatabaseKind } from '../platform/testing/index.ts';
import { mercato } from './mercato-process.ts';

// The command runs as its own process against the test app's PostgreSQL database (PGlite's data
// directory would be held by the test app).
describe.runIf(testDatabaseKind() === 'postgres')('mercato tenants create', () => {
  const started = startTestApp();
  afterAll(async () => (await started).close());

  it("makes the tenant's system namespaces in its creation, as POST /tenants does", async () => {
    const t = await started;
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false' };
    const result = await mercato(
      [
        'tenants',
        'create',
        '--slug',
        'cli-shop',
        '--name',
        'CLI Shop',
        '--admin-email',
        'owner@cli.test',
        '--admin-password',
        'a-long-password-1',
      ],
      env,
    );
    expect(result.code, result.output).toBe(0);
    const tenantId = JSON.parse(result.output.slice(result.output.indexOf('{'))).id as string;
    const { rows } = await sql<{ name: string }>`
      select name from wal.namespaces where tenant_id = ${tenantId} and system order by name`.execute(
      t.ctx.db.kysely,
    );
    expect(rows.map((r) => r.name)).toEqual([...SYSTEM_TOPICS].sort());
  }, 120_000);
});
