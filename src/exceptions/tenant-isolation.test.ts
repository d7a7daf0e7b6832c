import { type RawBuilder, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrdersModule } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { WalModule } from '../wal/index.ts';
import { type Capture, createCapture } from './capture.ts';
import { deadLetterTransactionId } from './dead-letters.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import type { ExceptionsDb } from './tables.ts';

let t: ExceptionsTestApp;
let db: ExceptionsDb;
/** Created first: its id sorts first, so its step runs before the healthy tenant's. */
let broken: OpsTenant;
let healthy: OpsTenant;
/** A capture of its own on the app, to run dead-letter sweeps by hand. */
let sweeper: Capture;

beforeAll(async () => {
  t = await startExceptionsApp();
  db = t.ctx.db.kysely as ExceptionsDb;
  broken = await createOpsTenant(t, 'isolation-broken');
  healthy = await createOpsTenant(t, 'isolation-healthy');
  const wal = t.modules.find((m) => m.name === 'wal') as WalModule;
  sweeper = createCapture({
    ctx: t.ctx,
    db,
    hooks: t.exceptions.hooks,
    events: wal.events,
    wal,
    orders: t.modules.find((m) => m.name === 'orders') as OrdersModule,
    checkout: t.checkout,
  });
});
afterAll(() => t.close());

/**
 * While `fn` runs, a trigger in the test database refuses `event` on `table` for the broken
 * tenant's rows (as a bad row or a failing statement would): its step of a sweep fails for real.
 */
async function refusingBroken<T>(
  table: 'archive' | 'exceptions',
  event: RawBuilder<unknown>,
  fn: () => Promise<T>,
) {
  const row = table === 'archive' ? sql`old` : sql`new`;
  await sql`create function public.refuse_tenant() returns trigger language plpgsql
    as $$ begin raise exception 'refused for tenant %', tg_argv[0]; end $$`.execute(db);
  await sql`create trigger refuse_tenant before ${event} on ${sql.table(`exceptions.${table}`)} for each row
    when (${row}.tenant_id = ${sql.lit(broken.id)}::uuid)
    execute function public.refuse_tenant(${sql.lit(broken.id)})`.execute(db);
  try {
    return await fn();
  } finally {
    await sql`drop trigger refuse_tenant on ${sql.table(`exceptions.${table}`)}`.execute(db);
    await sql`drop function public.refuse_tenant()`.execute(db);
  }
}

async function oldArchive(tenant: OpsTenant): Promise<string> {
  const id = uuidv7();
  await withTenant(db, tenant.id, (trx) =>
    trx
      .insertInto('exceptions.archive')
      .values({
        id,
        tenant_id: tenant.id,
        transaction_id: `archived-${id}`,
        record: '{}',
        // Past the default deleteAfterDays (365).
        archived_at: new Date(Date.now() - 400 * 86_400_000),
      })
      .execute(),
  );
  return id;
}

const archived = (tenant: OpsTenant, id: string) =>
  withTenant(db, tenant.id, async (trx) =>
    Boolean(await trx.selectFrom('exceptions.archive').select('id').where('id', '=', id).executeTakeFirst()),
  );

/** A dead letter of the tenant's order-events, dead `minutesAgo`, written straight into the WAL. */
async function deadLetter(tenant: OpsTenant, minutesAgo: number): Promise<string> {
  const id = uuidv7();
  await withTenant(db, tenant.id, (trx) =>
    sql`insert into wal.messages (id, tenant_id, namespace, message_id, payload, headers, request_hash,
        backend, state, due_at, attempts, max_attempts, last_error, dead_at)
      values (${id}, ${tenant.id}, 'order-events', ${id}, '{}'::jsonb,
        ${JSON.stringify({ 'ce-type': 'mercato.test.isolation' })}::jsonb, 'x', 'postgres', 'dead', now(), 5, 5,
        'connection refused', now() - make_interval(mins => ${minutesAgo}))`.execute(trx),
  );
  return deadLetterTransactionId('order-events', id);
}

const exceptionOf = (tenant: OpsTenant, transactionId: string) =>
  withTenant(db, tenant.id, (trx) =>
    trx
      .selectFrom('exceptions.exceptions')
      .select('id')
      .where('transaction_id', '=', transactionId)
      .executeTakeFirst(),
  );

describe('sweeps over tenants', () => {
  it("purges every other tenant when one tenant's batch fails, and that tenant on the next run", async () => {
    const stuck = await oldArchive(broken);
    const due = await oldArchive(healthy);
    const result = await refusingBroken('archive', sql`delete`, () => t.exceptions.purge({}));
    expect(result.failed).toEqual([
      { tenantId: broken.id, error: expect.stringContaining(`refused for tenant ${broken.id}`) },
    ]);
    expect(result.tenants).toEqual([expect.objectContaining({ tenantId: healthy.id, deleted: 1 })]);
    expect(await archived(healthy, due)).toBe(false);
    expect(await archived(broken, stuck)).toBe(true);

    const next = await t.exceptions.purge({});
    expect(next).toMatchObject({ failed: [], tenants: [{ tenantId: broken.id, deleted: 1 }] });
    expect(await archived(broken, stuck)).toBe(false);
  });

  it("sweeps every other tenant's dead letters when one tenant's capture fails, and that tenant's on the next sweep", async () => {
    // The broken tenant's death is the older: its capture runs first, and it is older than the
    // margin a sweep looks back past its own start.
    const stuck = await deadLetter(broken, 10);
    const due = await deadLetter(healthy, 1);
    const result = await refusingBroken('exceptions', sql`insert`, () =>
      sweeper.sweepDeadLetters({ settleMs: 0 }),
    );
    expect(result.failed).toEqual([
      { tenantId: broken.id, error: expect.stringContaining(`refused for tenant ${broken.id}`) },
    ]);
    expect(await exceptionOf(healthy, due)).toBeDefined();
    expect(await exceptionOf(broken, stuck)).toBeUndefined();

    const next = await sweeper.sweepDeadLetters({ settleMs: 0 });
    expect(next.failed).toEqual([]);
    expect(await exceptionOf(broken, stuck)).toBeDefined();
  });
});
