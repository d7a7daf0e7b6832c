import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseKind } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { asTenant, seedExceptions } from './exceptions-seed-fixtures.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;

beforeAll(async () => {
  t = await startExceptionsApp();
  [a, b] = [await createOpsTenant(t, 'integrity-a'), await createOpsTenant(t, 'integrity-b')];
  await seedExceptions(t, a.id, [{ transactionId: 'I-1' }, { transactionId: 'I-2' }]);
  await seedExceptions(t, b.id, [{ transactionId: 'I-1' }]);
});
afterAll(() => t?.close());

const idOf = (tenantId: string, transactionId: string) =>
  asTenant(t, tenantId, async (trx) => {
    const row = await trx
      .selectFrom('exceptions.exceptions')
      .select(['id', 'group_id'])
      .where('transaction_id', '=', transactionId)
      .executeTakeFirstOrThrow();
    return row;
  });

const audit = (tenantId: string, exceptionId: string) =>
  asTenant(t, tenantId, (trx) =>
    sql`insert into exceptions.audit (id, tenant_id, exception_id, action, actor)
      values (${uuidv7()}, ${tenantId}, ${exceptionId}, 'noted', 'test')`.execute(trx),
  );

// Migration 0035 checks per statement what the foreign keys checked per row.
describe('references between exceptions, groups and audit', () => {
  it("refuses an exception moved to a group that does not exist, or to another tenant's", async () => {
    const { id } = await idOf(a.id, 'I-1');
    await expect(
      asTenant(t, a.id, (trx) =>
        trx.updateTable('exceptions.exceptions').set({ group_id: uuidv7() }).where('id', '=', id).execute(),
      ),
    ).rejects.toMatchObject({ code: '23503' });
    const theirs = await idOf(b.id, 'I-1');
    await expect(
      asTenant(t, a.id, (trx) =>
        trx
          .updateTable('exceptions.exceptions')
          .set({ group_id: theirs.group_id })
          .where('id', '=', id)
          .execute(),
      ),
    ).rejects.toMatchObject({ code: '23503' });
    await expect(seedExceptions(t, a.id, [{ transactionId: 'I-3' }])).resolves.toBeDefined();
  });

  it("refuses an audit entry of an exception that does not exist, or is another tenant's", async () => {
    const { id } = await idOf(a.id, 'I-1');
    await expect(audit(a.id, id)).resolves.toBeDefined();
    await expect(audit(a.id, uuidv7())).rejects.toMatchObject({ code: '23503' });
    const theirs = await idOf(b.id, 'I-1');
    await expect(audit(a.id, theirs.id)).rejects.toMatchObject({ code: '23503' });
  });

  it('deletes the audit of deleted exceptions, and refuses to delete a group exceptions are in', async () => {
    const { id, group_id } = await idOf(a.id, 'I-2');
    await audit(a.id, id);
    await expect(
      asTenant(t, a.id, (trx) => trx.deleteFrom('exceptions.groups').where('id', '=', group_id).execute()),
    ).rejects.toMatchObject({ code: '23503' });
    await asTenant(t, a.id, (trx) => trx.deleteFrom('exceptions.exceptions').where('id', '=', id).execute());
    const left = await asTenant(t, a.id, (trx) =>
      trx.selectFrom('exceptions.audit').select('id').where('exception_id', '=', id).execute(),
    );
    expect(left).toEqual([]);
  });

  it.runIf(testDatabaseKind() === 'postgres')(
    "holds off a delete of an exception another transaction wrote until the audit's transaction ends",
    async () => {
      const [seeded] = await seedExceptions(t, a.id, [{ transactionId: 'I-HELD' }]);
      const id = seeded!.id;
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let written!: () => void;
      const audited = new Promise<void>((resolve) => {
        written = resolve;
      });
      const writer = asTenant(t, a.id, async (trx) => {
        await sql`insert into exceptions.audit (id, tenant_id, exception_id, action, actor)
          values (${uuidv7()}, ${a.id}, ${id}, 'noted', 'test')`.execute(trx);
        written();
        await held;
      });
      await audited;
      await expect(
        asTenant(t, a.id, async (trx) => {
          await sql`set local lock_timeout = '300ms'`.execute(trx);
          await trx.deleteFrom('exceptions.exceptions').where('id', '=', id).execute();
        }),
      ).rejects.toMatchObject({ code: '55P03' });
      release();
      await writer;
      await asTenant(t, a.id, (trx) =>
        trx.deleteFrom('exceptions.exceptions').where('id', '=', id).execute(),
      );
      const left = await asTenant(t, a.id, (trx) =>
        trx.selectFrom('exceptions.audit').select('id').where('exception_id', '=', id).execute(),
      );
      expect(left).toEqual([]);
    },
  );
});
