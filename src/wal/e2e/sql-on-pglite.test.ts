import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from '../../identity/auth/auth-test-fixtures.ts';
import { platformAdmin } from '../../identity/users/user-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { PLATFORM_TENANT_ID } from '../../platform/http/index.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { SQL_NEEDS_POSTGRES } from '../namespaces/namespace.ts';
import { until } from './receiver.ts';

// The attack of issue 9 on PGlite, whose one session is the superuser's: an sql target stored
// before the API refused them there (here inserted with SQL) takes the role back and reads the
// signing keys. Its deliveries go to the dead letters without running the statement.
const STEAL_KEYS = {
  type: 'sql',
  name: 'keys',
  enabled: true,
  statement: `insert into sql_pglite.stolen (role_set, keys)
    select set_config('role', 'postgres', true),
      query_to_xml('select private_pem from platform.signing_keys', true, false, '')::text`,
  params: [],
};

// Only PGlite has the superuser session; on PostgreSQL sql targets run (sql-target.test.ts).
describe.runIf(testDatabaseKind() === 'pglite')('a stored sql target on PGlite', () => {
  let t: TestApp;
  let operator: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({}, { modules: async (ctx) => [await createWal(ctx)] });
    operator = (await platformAdmin(t)).headers;
    await withSystem(t.ctx.db.kysely, async (trx) => {
      await sql`create schema sql_pglite`.execute(trx);
      await sql`create table sql_pglite.stolen (role_set text, keys text)`.execute(trx);
      await sql`grant usage on schema sql_pglite to mercato_app`.execute(trx);
      await sql`grant insert on sql_pglite.stolen to mercato_app`.execute(trx);
      await sql`insert into wal.namespaces (tenant_id, name, targets, max_attempts)
        values (${PLATFORM_TENANT_ID}, 'keys', ${JSON.stringify([STEAL_KEYS])}::jsonb, 3)`.execute(trx);
    });
  });
  afterAll(() => t.close());

  it('is not run: no row read, the message goes to the dead letters saying sql targets need PostgreSQL', async () => {
    const written = await post(
      t.app,
      '/api/v1/wal/write',
      { namespace: 'keys', payload: { n: 1 } },
      operator,
    );
    expect(written.statusCode, written.body).toBe(202);
    const messageId = written.json<{ messageId: string }>().messageId;
    const dead = await until(
      () =>
        withSystem(t.ctx.db.kysely, async (trx) => {
          const { rows } = await sql<{ state: string; last_error: string | null; errors: string[] }>`
            select m.state, m.last_error,
              coalesce((select array_agg(a.error order by a.attempt) from wal.attempts a
                where a.message_pk = m.id), '{}') as errors
            from wal.messages m where m.message_id = ${messageId}`.execute(trx);
          return rows[0]?.state === 'dead' || rows[0]?.state === 'delivered' ? rows[0] : undefined;
        }),
      'the message to be dead-lettered (or, before the fix, delivered)',
    );
    expect(dead.state).toBe('dead');
    expect(dead.last_error).toContain(SQL_NEEDS_POSTGRES);
    expect(dead.errors).toEqual([SQL_NEEDS_POSTGRES]);
    const stolen = await withSystem(t.ctx.db.kysely, (trx) =>
      sql`select * from sql_pglite.stolen`.execute(trx),
    );
    expect(stolen.rows).toEqual([]);
  });
});
