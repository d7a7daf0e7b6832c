import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import { addUser, auth } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import type { ExceptionStatus, ExceptionsDb } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;
let db: ExceptionsDb;

beforeAll(async () => {
  t = await startExceptionsApp();
  db = t.ctx.db.kysely as ExceptionsDb;
  a = await createOpsTenant(t, 'retention-a');
  b = await createOpsTenant(t, 'retention-b');
});
afterAll(() => t.close());

const DAY = 86_400_000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY);

/** An exception last changed `days` ago (with a group of its own), straight into the tables. */
async function oldException(tenant: OpsTenant, status: ExceptionStatus, days: number) {
  const groupId = uuidv7();
  const id = uuidv7();
  const transactionId = `tx-${id}`;
  await withTenant(db, tenant.id, async (trx) => {
    await trx
      .insertInto('exceptions.groups')
      .values({
        id: groupId,
        tenant_id: tenant.id,
        fingerprint: groupId,
        exceptions: 1,
        interface_type: 'ORDER',
        category: 'BUSINESS_RULE',
        normalized_reason: 'rejected',
        severity: 'HIGH',
        first_seen: daysAgo(days),
        last_seen: daysAgo(days),
      })
      .execute();
    await trx
      .insertInto('exceptions.exceptions')
      .values({
        id,
        tenant_id: tenant.id,
        transaction_id: transactionId,
        interface_type: 'ORDER',
        event_type: 'OrderRejected',
        operation: 'create-order',
        reason: 'rejected by the partner',
        category: 'BUSINESS_RULE',
        severity: 'HIGH',
        status,
        retryable: true,
        source_ref: JSON.stringify({ kind: 'source', interfaceType: 'ORDER', externalId: null }),
        payload: JSON.stringify({ orderId: 'o-1' }),
        group_id: groupId,
        first_seen: daysAgo(days + 1),
        last_seen: daysAgo(days + 1),
        created_at: daysAgo(days + 1),
        updated_at: daysAgo(days),
      })
      .execute();
  });
  return { id, groupId, transactionId };
}

async function oldArchive(tenant: OpsTenant, days: number): Promise<string> {
  const id = uuidv7();
  await withTenant(db, tenant.id, (trx) =>
    trx
      .insertInto('exceptions.archive')
      .values({
        id,
        tenant_id: tenant.id,
        transaction_id: `archived-${id}`,
        record: '{}',
        archived_at: daysAgo(days),
      })
      .execute(),
  );
  return id;
}

const exists = (tenant: OpsTenant, table: 'exceptions.exceptions' | 'exceptions.archive', id: string) =>
  withTenant(db, tenant.id, async (trx) =>
    Boolean(await trx.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst()),
  );

const settings = (tenant: OpsTenant, body: Record<string, unknown>) =>
  send(t.app, 'PUT', '/api/v1/exceptions/settings', tenant.admin, body);

describe('retention settings', () => {
  it("answers the defaults, then the tenant's own, leaving other tenants at theirs", async () => {
    const c = await createOpsTenant(t, 'retention-c');
    const fresh = await send(t.app, 'GET', '/api/v1/exceptions/settings', c.operator);
    expect(fresh.json()).toEqual({ archiveAfterDays: 30, deleteAfterDays: 365, updatedAt: null });
    const put = await send(t.app, 'PUT', '/api/v1/exceptions/settings', c.operator, { archiveAfterDays: 10 });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({
      archiveAfterDays: 10,
      deleteAfterDays: 365,
      updatedAt: expect.any(String),
    });
    const again = await settings(c, { deleteAfterDays: 100 });
    expect(again.json()).toMatchObject({ archiveAfterDays: 10, deleteAfterDays: 100 });
    expect((await send(t.app, 'GET', '/api/v1/exceptions/settings', b.admin)).json()).toMatchObject({
      archiveAfterDays: 30,
      deleteAfterDays: 365,
    });
  });

  it('answers 400 naming the field for bad settings', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ archiveAfterDays: 0 }, '/archiveAfterDays'],
      [{ archiveAfterDays: 3651 }, '/archiveAfterDays'],
      [{ deleteAfterDays: 36_501 }, '/deleteAfterDays'],
      [{ deleteAfterDays: 1.5 }, '/deleteAfterDays'],
      [{ archiveAfterDays: '30' }, '/archiveAfterDays'],
      [{}, ''],
      [{ keepForever: true }, ''],
    ];
    for (const [body, pointer] of cases) {
      const res = await settings(a, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      if (pointer)
        expect(res.json<{ errors: Array<{ pointer: string }> }>().errors.map((e) => e.pointer)).toContain(
          pointer,
        );
    }
  });

  it('is for operators and admins only: staff and customers 403, anonymous 401, keys by permission', async () => {
    await addUser(t, a.id, 'customer@retention-a.test', 'customer');
    const customer = auth((await login(t.app, a.slug, 'customer@retention-a.test')).accessToken);
    const key = await send(t.app, 'POST', '/api/v1/api-keys', a.admin, {
      name: 'ro',
      permissions: ['exceptions:read'],
    });
    const reader = { 'x-api-key': key.json<{ key: string }>().key };
    for (const [method, body] of [['GET'], ['PUT', { archiveAfterDays: 7 }]] as const) {
      const url = '/api/v1/exceptions/settings';
      expect((await send(t.app, method, url, a.staff, body)).statusCode).toBe(403);
      expect((await send(t.app, method, url, customer, body)).statusCode).toBe(403);
      expect((await send(t.app, method, url, {}, body)).statusCode).toBe(401);
      expect((await send(t.app, method, url, reader, body)).statusCode).toBe(method === 'GET' ? 200 : 403);
    }
  });
});

describe('archive and purge', () => {
  it('archives resolved and closed exceptions past the setting with their audit and attempts, deletes old archive rows, per tenant', async () => {
    expect((await settings(a, { archiveAfterDays: 10, deleteAfterDays: 100 })).statusCode).toBe(200);
    expect((await settings(b, { archiveAfterDays: 30, deleteAfterDays: 365 })).statusCode).toBe(200);
    const resolved = await oldException(a, 'RESOLVED', 20);
    const closed = await oldException(a, 'CLOSED', 40);
    const young = await oldException(a, 'RESOLVED', 5);
    const open = await oldException(a, 'NEW', 100);
    const retried = await oldException(a, 'RETRIED_SUCCESS', 100);
    const bYoung = await oldException(b, 'RESOLVED', 20);
    const bOld = await oldException(b, 'CLOSED', 40);
    const aOldArchive = await oldArchive(a, 200);
    const aKeptArchive = await oldArchive(a, 50);
    const bKeptArchive = await oldArchive(b, 200);
    const bOldArchive = await oldArchive(b, 400);
    const alertId = uuidv7();
    await withTenant(db, a.id, async (trx) => {
      await trx
        .insertInto('exceptions.audit')
        .values(
          ['captured', 'resolved'].map((action) => ({
            id: uuidv7(),
            tenant_id: a.id,
            exception_id: resolved.id,
            action,
            actor: 'user:test',
          })),
        )
        .execute();
      await trx
        .insertInto('exceptions.retry_attempts')
        .values({
          id: uuidv7(),
          tenant_id: a.id,
          exception_id: resolved.id,
          attempt: 1,
          action: 'source',
          status: 'failed',
          requested_by: 'user:test',
        })
        .execute();
      const ruleId = uuidv7();
      await trx
        .insertInto('exceptions.alert_rules')
        .values({
          id: ruleId,
          tenant_id: a.id,
          name: 'r',
          kind: 'severity',
          enabled: true,
          min_severity: 'HIGH',
        })
        .execute();
      await trx
        .insertInto('exceptions.alerts')
        .values({
          id: alertId,
          tenant_id: a.id,
          rule_id: ruleId,
          group_id: resolved.groupId,
          exception_id: resolved.id,
          escalation_team: 'order-operations',
          impact: '{}',
          fired_at: daysAgo(20),
        })
        .execute();
    });

    const dry = await t.exceptions.purge({ dryRun: true });
    expect(dry).toMatchObject({ archived: 3, deleted: 2, dryRun: true });
    expect(dry.tenants).toEqual(
      expect.arrayContaining([
        { tenantId: a.id, slug: a.slug, archived: 2, deleted: 1 },
        { tenantId: b.id, slug: b.slug, archived: 1, deleted: 1 },
      ]),
    );
    expect(await exists(a, 'exceptions.exceptions', resolved.id)).toBe(true);
    expect(await exists(a, 'exceptions.archive', aOldArchive)).toBe(true);

    const calls: Array<[number, number]> = [];
    const result = await t.exceptions.purge({ batchSize: 1 }, (done, total) => calls.push([done, total]));
    expect(result).toMatchObject({ archived: 3, deleted: 2, dryRun: false });
    expect(calls).toEqual([1, 2, 3, 4, 5].map((done) => [done, 5]));

    for (const gone of [resolved, closed])
      expect(await exists(a, 'exceptions.exceptions', gone.id)).toBe(false);
    for (const kept of [young, open, retried])
      expect(await exists(a, 'exceptions.exceptions', kept.id)).toBe(true);
    expect(await exists(b, 'exceptions.exceptions', bYoung.id)).toBe(true);
    expect(await exists(b, 'exceptions.exceptions', bOld.id)).toBe(false);
    expect(await exists(a, 'exceptions.archive', aOldArchive)).toBe(false);
    expect(await exists(a, 'exceptions.archive', aKeptArchive)).toBe(true);
    expect(await exists(b, 'exceptions.archive', bKeptArchive)).toBe(true);
    expect(await exists(b, 'exceptions.archive', bOldArchive)).toBe(false);

    const { archive, audit, attempts, alert } = await withTenant(db, a.id, async (trx) => ({
      archive: await trx
        .selectFrom('exceptions.archive')
        .selectAll()
        .where('transaction_id', '=', resolved.transactionId)
        .executeTakeFirstOrThrow(),
      audit: await trx
        .selectFrom('exceptions.audit')
        .select('id')
        .where('exception_id', '=', resolved.id)
        .execute(),
      attempts: await trx
        .selectFrom('exceptions.retry_attempts')
        .select('id')
        .where('exception_id', '=', resolved.id)
        .execute(),
      alert: await trx
        .selectFrom('exceptions.alerts')
        .selectAll()
        .where('id', '=', alertId)
        .executeTakeFirstOrThrow(),
    }));
    const record = (typeof archive.record === 'string' ? JSON.parse(archive.record) : archive.record) as {
      exception: Record<string, unknown>;
      audit: Array<{ action: string }>;
      retryAttempts: Array<{ attempt: number; status: string }>;
    };
    expect(record.exception).toMatchObject({
      id: resolved.id,
      status: 'RESOLVED',
      payload: { orderId: 'o-1' },
    });
    expect(record.exception).not.toHaveProperty('search');
    expect(record.audit.map((x) => x.action)).toEqual(['captured', 'resolved']);
    expect(record.retryAttempts).toMatchObject([{ attempt: 1, status: 'failed' }]);
    expect(audit).toEqual([]);
    expect(attempts).toEqual([]);
    // The alert stays with its group, without the archived exception.
    expect(alert).toMatchObject({ group_id: resolved.groupId, exception_id: null });

    expect(await t.exceptions.purge({})).toMatchObject({ archived: 0, deleted: 0, tenants: [] });
  });

  it('purges by hand for one tenant with --older-than overriding its setting', async () => {
    const d = await createOpsTenant(t, 'retention-d');
    const mine = await oldException(d, 'RESOLVED', 3);
    const theirs = await oldException(b, 'RESOLVED', 3);
    expect(await t.exceptions.purge({ tenantId: d.id, olderThanDays: 2, dryRun: true })).toMatchObject({
      archived: 1,
      deleted: 0,
    });
    expect(await exists(d, 'exceptions.exceptions', mine.id)).toBe(true);
    expect(await t.exceptions.purge({ tenantId: d.id, olderThanDays: 2 })).toMatchObject({
      archived: 1,
      tenants: [{ slug: d.slug, archived: 1, deleted: 0 }],
    });
    expect(await exists(d, 'exceptions.exceptions', mine.id)).toBe(false);
    expect(await exists(b, 'exceptions.exceptions', theirs.id)).toBe(true);
    expect(await t.exceptions.purge({ tenantId: 'not-a-tenant', olderThanDays: 0 })).toMatchObject({
      archived: 0,
    });
  });

  it('archives each exception once when two purges run at once', async () => {
    const rows: Array<{ transactionId: string }> = [];
    for (let i = 0; i < 12; i++) rows.push(await oldException(a, 'CLOSED', 60));
    const [one, two] = await Promise.all([
      t.exceptions.purge({ tenantId: a.id, batchSize: 3 }),
      t.exceptions.purge({ tenantId: a.id, batchSize: 3 }),
    ]);
    expect(one!.archived + two!.archived).toBe(12);
    const archived = await withTenant(db, a.id, (trx) =>
      trx
        .selectFrom('exceptions.archive')
        .select('transaction_id')
        .where(
          'transaction_id',
          'in',
          rows.map((r) => r.transactionId),
        )
        .execute(),
    );
    expect(archived).toHaveLength(12);
  });
});
