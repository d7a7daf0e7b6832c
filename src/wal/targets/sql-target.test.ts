import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../platform/db/index.ts';
import { withTenant } from '../../platform/db/index.ts';
import { PLATFORM_TENANT_ID } from '../../platform/http/index.ts';
import { cloneTestDatabase, testDatabaseKind } from '../../platform/testing/index.ts';
import { SQL_NEEDS_POSTGRES, type SqlTarget } from '../namespaces/namespace.ts';
import { deliverSql } from './sql-target.ts';
import { testDelivery } from './test-fixtures.ts';

// Only the platform tenant's (the operator's) sql targets run.
const TENANT_A = PLATFORM_TENANT_ID;
const TENANT_B = '00000000-0000-7000-8000-00000000000b';

let db: Database;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ db, drop } = await cloneTestDatabase());
  // Created by the owner, used by the application role under row-level security, like a module's table.
  await sql`create schema target_test`.execute(db.kysely);
  await sql`create table target_test.order_marks (
    tenant_id uuid not null,
    order_id text not null,
    total integer not null,
    message_id text not null
  )`.execute(db.kysely);
  await sql`alter table target_test.order_marks enable row level security`.execute(db.kysely);
  await sql`create policy tenant_rows on target_test.order_marks
    using (tenant_id = current_setting('app.tenant_id')::uuid)
    with check (tenant_id = current_setting('app.tenant_id')::uuid)`.execute(db.kysely);
  await sql`grant usage on schema target_test to mercato_app`.execute(db.kysely);
  await sql`grant select, insert on target_test.order_marks to mercato_app`.execute(db.kysely);
  await sql`create table target_test.runs_as (role text not null, tenant text not null)`.execute(db.kysely);
  await sql`grant insert on target_test.runs_as to mercato_app`.execute(db.kysely);
  await sql`create table target_test.stolen (role_set text, keys text)`.execute(db.kysely);
  await sql`grant insert on target_test.stolen to mercato_app`.execute(db.kysely);
});

afterAll(async () => {
  await drop();
});

function target(overrides: Partial<SqlTarget> = {}): SqlTarget {
  return {
    type: 'sql',
    name: 'mark',
    enabled: true,
    statement:
      'insert into target_test.order_marks (tenant_id, order_id, total, message_id) values ($1, $2, $3, $4)',
    params: ['/tenantId', '/payload/orderId', '/payload/total', '/messageId'],
    ...overrides,
  };
}

async function rows() {
  const result = await sql<{
    tenant_id: string;
    order_id: string;
    total: number;
    message_id: string;
  }>`select * from target_test.order_marks order by order_id`.execute(db.kysely);
  return result.rows;
}

// sql targets run on PostgreSQL only: on PGlite deliverSql refuses them (tested below).
describe.runIf(testDatabaseKind() === 'postgres')('sql target on PostgreSQL', () => {
  it('inserts a row with params taken from the message by JSON pointer', async () => {
    const delivery = testDelivery({
      tenantId: TENANT_A,
      messageId: 'msg-1',
      payload: { orderId: 'ord-1', total: 1999 },
    });
    expect(await deliverSql(db, target(), delivery)).toEqual({ outcome: 'delivered' });
    expect(await rows()).toEqual([
      { tenant_id: TENANT_A, order_id: 'ord-1', total: 1999, message_id: 'msg-1' },
    ]);
  });

  it("runs under the delivery's tenant: writing another tenant's row is refused by row-level security", async () => {
    const delivery = testDelivery({
      tenantId: TENANT_A,
      payload: { orderId: 'ord-2', total: 1, tenant: TENANT_B },
    });
    const result = await deliverSql(
      db,
      target({ params: ['/payload/tenant', '/payload/orderId', '/payload/total', '/messageId'] }),
      delivery,
    );
    expect(result.outcome).toBe('dead');
    expect((result as { error: string }).error).toMatch(/SQLSTATE 42501/);
    expect((await rows()).map((row) => row.order_id)).toEqual(['ord-1']);
  });

  it('sends a statement with a syntax error straight to the dead letters', async () => {
    const result = await deliverSql(
      db,
      target({ statement: 'insert into nowhere values ((' }),
      testDelivery({ tenantId: TENANT_A }),
    );
    expect(result.outcome).toBe('dead');
    expect((result as { error: string }).error).toMatch(/SQLSTATE 42601/);
  });

  it('sends a missing table straight to the dead letters', async () => {
    const result = await deliverSql(
      db,
      target({ statement: 'delete from target_test.absent where id = $1', params: ['/key'] }),
      testDelivery({ tenantId: TENANT_A }),
    );
    expect(result).toMatchObject({ outcome: 'dead' });
    expect((result as { error: string }).error).toMatch(/SQLSTATE 42P01/);
  });

  it('sends a constraint violation (a missing param becomes null) to the dead letters', async () => {
    const delivery = testDelivery({ tenantId: TENANT_A, payload: { orderId: 'ord-3' } });
    const result = await deliverSql(db, target(), delivery);
    expect(result.outcome).toBe('dead');
    expect((result as { error: string }).error).toMatch(/SQLSTATE 23502/);
  });

  it("runs the operator's statement as mercato_app with app.tenant_id of the platform tenant", async () => {
    const probe = target({
      statement:
        "insert into target_test.runs_as (role, tenant) values (current_user, current_setting('app.tenant_id'))",
      params: [],
    });
    expect(await deliverSql(db, probe, testDelivery({ tenantId: TENANT_A }))).toEqual({
      outcome: 'delivered',
    });
    const result = await sql<{ role: string; tenant: string }>`select * from target_test.runs_as`.execute(
      db.kysely,
    );
    expect(result.rows).toEqual([{ role: 'mercato_app', tenant: TENANT_A }]);
  });

  it('does not run a stored sql target of any other tenant: it goes to the dead letters', async () => {
    const delivery = testDelivery({ tenantId: TENANT_B, payload: { orderId: 'ord-b', total: 1 } });
    expect(await deliverSql(db, target(), delivery)).toEqual({
      outcome: 'dead',
      error: 'sql targets are for the operator (the platform tenant) only',
    });
    expect((await rows()).map((row) => row.order_id)).not.toContain('ord-b');
  });

  it("cannot switch to the owner's role, even in the operator's statement", async () => {
    const owner = (await sql<{ name: string }>`select current_user as name`.execute(db.kysely)).rows[0]!.name;
    const becomeOwner = target({
      statement: 'select set_config($1, $2, true), count(*) from platform.signing_keys',
      params: ['/payload/setting', '/payload/role'],
    });
    const delivery = testDelivery({ tenantId: TENANT_A, payload: { setting: 'role', role: owner } });
    const result = await deliverSql(db, becomeOwner, delivery);
    expect(result.outcome).toBe('dead');
    expect((result as { error: string }).error).toMatch(/SQLSTATE 42501/);
  });

  it('refuses a malformed JSON pointer without running anything', async () => {
    const result = await deliverSql(
      db,
      target({ params: ['payload/orderId'] }),
      testDelivery({ tenantId: TENANT_A }),
    );
    expect(result).toEqual({
      outcome: 'dead',
      error: 'invalid JSON pointer "payload/orderId": it must start with "/"',
    });
  });
});

// The attack of issue 9 on PGlite: its one session is the superuser's, so a statement that runs
// at all can take the role back and read the signing keys.
describe.runIf(testDatabaseKind() === 'pglite')('sql target on PGlite', () => {
  const STEAL_KEYS = target({
    statement: `insert into target_test.stolen (role_set, keys)
      select set_config('role', 'postgres', true),
        query_to_xml('select count(*) as n from platform.signing_keys', true, false, '')::text`,
    params: [],
  });
  const stolen = async () =>
    (await sql<{ role_set: string }>`select role_set from target_test.stolen`.execute(db.kysely)).rows;

  it("does not run even the operator's statement: set_config('role', 'postgres') reads no key, dead letter", async () => {
    const result = await deliverSql(db, STEAL_KEYS, testDelivery({ tenantId: TENANT_A }));
    expect(result).toEqual({ outcome: 'dead', error: SQL_NEEDS_POSTGRES });
    expect(await stolen()).toEqual([]);
  });

  it('would otherwise read the signing keys: the same statement in a tenant transaction becomes the superuser', async () => {
    await withTenant(db.kysely, TENANT_A, (trx) => sql.raw(STEAL_KEYS.statement).execute(trx));
    expect(await stolen()).toEqual([{ role_set: 'postgres' }]);
    await sql`delete from target_test.stolen`.execute(db.kysely);
  });
});

// Only PostgreSQL runs sql targets, so only there can its connection be lost mid-delivery.
describe.runIf(testDatabaseKind() === 'postgres')('sql target when the database is gone', () => {
  it('retries on a connection error', async () => {
    const other = await cloneTestDatabase();
    await other.drop();
    const result = await deliverSql(other.db, target(), testDelivery({ tenantId: TENANT_A }));
    expect(result.outcome).toBe('retry');
    expect((result as { error: string }).error).not.toMatch(/SQLSTATE/);
  });
});
