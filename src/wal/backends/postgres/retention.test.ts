import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../../platform/testing/index.ts';
import { insertMessage, insertNamespace, messageRow } from '../../delivery/delivery-test-fixtures.ts';
import type { WalTables } from '../../tables.ts';
import { purgeRetention } from './retention.ts';

let t: TestApp;
let db: Kysely<WalTables>;
let tenant: TestTenant;

beforeAll(async () => {
  t = await startTestApp();
  db = t.ctx.db.kysely;
  tenant = await createTestTenant(t, 'retention');
});

afterAll(async () => {
  await t.close();
});

async function finished(ns: string, state: 'delivered' | 'dead', secondsAgo: number) {
  const id = await insertMessage(db, tenant.id, ns, {});
  const column = state === 'delivered' ? sql`delivered_at` : sql`dead_at`;
  await sql`update wal.messages set state = ${state}, ${column} = now() - ${secondsAgo} * interval '1 second'
    where id = ${id}`.execute(db);
  return id;
}

describe('retention', () => {
  it("should delete delivered messages and dead letters past their namespace's retention only", async () => {
    await insertNamespace(db, tenant.id, 'short', ['h']);
    await insertNamespace(db, tenant.id, 'long', ['h']);
    await sql`update wal.namespaces set delivered_retention_seconds = 60, dead_retention_seconds = 600
      where tenant_id = ${tenant.id} and name = 'short'`.execute(db);
    const oldDelivered = await finished('short', 'delivered', 120);
    const recentDelivered = await finished('short', 'delivered', 10);
    const oldDead = await finished('short', 'dead', 1200);
    const youngDead = await finished('short', 'dead', 120);
    const keptByLongRetention = await finished('long', 'delivered', 120);
    const pending = await insertMessage(db, tenant.id, 'short', {});
    await sql`insert into wal.inbox (consumer, message_pk, tenant_id) values ('h', ${oldDelivered}, ${tenant.id})`.execute(
      db,
    );

    expect(await purgeRetention(db, t.ctx.config.walMaxRetentionSeconds)).toEqual({ delivered: 1, dead: 1 });
    expect(await messageRow(db, oldDelivered)).toBeUndefined();
    expect(await messageRow(db, oldDead)).toBeUndefined();
    for (const id of [recentDelivered, youngDead, keptByLongRetention, pending]) {
      expect(await messageRow(db, id)).toBeDefined();
    }
    const { rows } = await sql`select 1 from wal.inbox where message_pk = ${oldDelivered}`.execute(db);
    expect(rows).toEqual([]);
  });

  it('should delete messages past MERCATO_WAL_MAX_RETENTION_SECONDS in a namespace stored with a longer retention', async () => {
    const cap = t.ctx.config.walMaxRetentionSeconds;
    await insertNamespace(db, tenant.id, 'forever', ['h']);
    // As stored before the cap: 68 years, which the API no longer takes.
    await sql`update wal.namespaces set delivered_retention_seconds = 2147483647,
      dead_retention_seconds = 2147483647 where tenant_id = ${tenant.id} and name = 'forever'`.execute(db);
    const pastCapDelivered = await finished('forever', 'delivered', cap + 60);
    const pastCapDead = await finished('forever', 'dead', cap + 60);
    const withinCap = await finished('forever', 'delivered', cap - 60);

    expect(await purgeRetention(db, cap)).toEqual({ delivered: 1, dead: 1 });
    expect(await messageRow(db, pastCapDelivered)).toBeUndefined();
    expect(await messageRow(db, pastCapDead)).toBeUndefined();
    expect(await messageRow(db, withinCap)).toBeDefined();
    // The stored value is kept (and shown): only its effect is capped.
    const { rows } = await sql<{ s: number }>`select delivered_retention_seconds as s from wal.namespaces
      where tenant_id = ${tenant.id} and name = 'forever'`.execute(db);
    expect(Number(rows[0]?.s)).toBe(2147483647);
  });
});
