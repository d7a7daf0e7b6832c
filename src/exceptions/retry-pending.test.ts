import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { testDatabaseKind, until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type HttpAnswer,
  type OpsTenant,
  overHttp,
  startExceptionsApp,
  writeInbound,
} from './exceptions-test-fixtures.ts';
import { startsOf } from './lifecycle.ts';
import {
  exceptionRow,
  type FakeSource,
  type HeldRequest,
  insertException,
  putSource,
  startSource,
} from './retry-test-fixtures.ts';
import type { ExceptionStatus, ExceptionsDb } from './tables.ts';

let t: ExceptionsTestApp;
let shop: OpsTenant;
let erp: FakeSource;

// The operator opened loopback to outbound calls (MERCATO_WAL_PRIVATE_TARGETS, as the WAL's tests do).
beforeAll(async () => {
  erp = await startSource();
  t = await startExceptionsApp({ MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' });
  shop = await createOpsTenant(t, 'pending-shop');
  // Held calls wait for the test, not for the timeout.
  for (const type of ['ORDER', 'COLLECTION'] as const) {
    await putSource(t, shop, type, { baseUrl: erp.url, timeoutMs: 30_000 });
  }
});
afterAll(async () => {
  await t?.close();
  await erp?.close();
});

const db = () => t.ctx.db.kysely as unknown as ExceptionsDb;
const at = (transactionId: string) => `/api/v1/exceptions/${encodeURIComponent(transactionId)}`;
const retry = (transactionId: string) => overHttp(t)('POST', `${at(transactionId)}/retry`, shop.operator);
const acknowledge = (transactionId: string) =>
  overHttp(t)('PUT', `${at(transactionId)}/acknowledge`, shop.operator, { note: 'on it' });
const resolve = (transactionId: string) =>
  overHttp(t)('PUT', `${at(transactionId)}/resolve`, shop.admin, { resolution: 'fixed' });

async function newException(prefix: string): Promise<string> {
  const transactionId = `${prefix}-${uuidv7()}`;
  await insertException(t, shop.id, {
    transactionId,
    sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: null },
  });
  return transactionId;
}

/** A retry whose POST to the source is held there: its answer comes once `post` is answered. */
async function inFlight(transactionId: string): Promise<{ answer: Promise<HttpAnswer>; post: HeldRequest }> {
  const from = erp.held.length;
  erp.hold(2);
  const answer = retry(transactionId);
  // The payload's GET first (404: the event's payload is sent), then the POST.
  await until(() => erp.held.length > from, 'the payload to be asked for');
  erp.held[from]!.answer();
  await until(() => erp.held.length > from + 1, 'the retry to reach the source');
  return { answer, post: erp.held[from + 1]! };
}

type AuditEntry = { action: string; details: Record<string, unknown> | null };

async function auditOf(transactionId: string): Promise<AuditEntry[]> {
  const row = await exceptionRow(t, shop.id, transactionId);
  return withTenant(db(), shop.id, (trx) =>
    trx
      .selectFrom('exceptions.audit')
      .select(['action', 'details'])
      .where('exception_id', '=', row.id)
      .orderBy('at')
      .orderBy('id')
      .execute(),
  ) as Promise<AuditEntry[]>;
}

/**
 * The audit read in its order as the moves it says happened: each step legal from where the
 * previous left the exception, and the last where the row is. An outcome moves the status only
 * from RETRY_IN_PROGRESS (the status its start set).
 */
async function expectAuditAgreesWithRow(transactionId: string) {
  let status: ExceptionStatus = 'NEW';
  for (const entry of await auditOf(transactionId)) {
    switch (entry.action) {
      case 'captured':
      case 'repeated':
      case 'alert.fired':
        break;
      case 'reopened':
        status = 'NEW';
        break;
      case 'retry.requested':
        expect(startsOf('RETRY_IN_PROGRESS'), `retry.requested from ${status}`).toContain(status);
        status = 'RETRY_IN_PROGRESS';
        break;
      case 'retry.succeeded':
      case 'retry.failed':
        if (status === 'RETRY_IN_PROGRESS')
          status = entry.action === 'retry.succeeded' ? 'RETRIED_SUCCESS' : 'RETRIED_FAILED';
        break;
      default:
        expect(entry.details?.from, `${entry.action} after ${status}`).toBe(status);
        status = entry.details?.to as ExceptionStatus;
    }
  }
  expect((await exceptionRow(t, shop.id, transactionId)).status).toBe(status);
}

const retryAlerts = async (exceptionId: string) => {
  const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
    sql<{
      n: number;
    }>`select count(*)::int as n from exceptions.alerts where exception_id = ${exceptionId}`.execute(trx),
  );
  return rows[0]!.n;
};

describe('acknowledging or resolving while a retry is under way', () => {
  beforeAll(async () => {
    const rule = await overHttp(t)('POST', '/api/v1/exceptions/alerts', shop.admin, {
      name: 'any failed retry',
      kind: 'retries',
      failedRetries: 1,
    });
    expect(rule.statusCode, rule.body).toBe(201);
  });

  it.each([
    ['succeeds', 200, 'succeeded'],
    ['fails', 422, 'failed'],
  ] as const)(
    'refuses to acknowledge, lets resolve, and keeps it resolved when the retry then %s',
    async (_, status, outcome) => {
      const id = await newException(`pending-${outcome}`);
      const { answer, post } = await inFlight(id);
      const acknowledged = await acknowledge(id);
      expect(acknowledged.statusCode, acknowledged.body).toBe(409);
      expect(acknowledged.json()).toMatchObject({
        code: 'ILLEGAL_TRANSITION',
        from: 'RETRY_IN_PROGRESS',
        to: 'ACKNOWLEDGED',
      });
      const resolved = await resolve(id);
      expect(resolved.statusCode, resolved.body).toBe(200);
      expect(resolved.json()).toMatchObject({ status: 'RESOLVED', retryCount: 1 });

      post.answer(status);
      const retried = await answer;
      expect(retried.statusCode, retried.body).toBe(201);
      expect(retried.json().attempt).toMatchObject({ attempt: 1, status: outcome });
      expect(retried.json().exception).toMatchObject({
        status: 'RESOLVED',
        retryCount: 1,
        resolution: 'fixed',
      });
      const row = await exceptionRow(t, shop.id, id);
      expect(row).toMatchObject({ status: 'RESOLVED', retry_count: 1, resolution: 'fixed' });
      expect((await auditOf(id)).map((a) => a.action)).toEqual([
        'retry.requested',
        'resolved',
        `retry.${outcome}`,
      ]);
      await expectAuditAgreesWithRow(id);
      // Resolved by an operator, it calls for no one: a failure fires no retries alert.
      expect(await retryAlerts(row.id)).toBe(0);
    },
  );

  it('acknowledges once the outcome is in: a failed retry may be, a successful one is not', async () => {
    const failed = await newException('after-failed');
    const one = await inFlight(failed);
    one.post.answer(422);
    expect((await one.answer).json().exception.status).toBe('RETRIED_FAILED');
    expect((await acknowledge(failed)).json()).toMatchObject({ status: 'ACKNOWLEDGED', retryCount: 1 });
    await expectAuditAgreesWithRow(failed);
    // The failure of an open exception is alerted.
    expect(await retryAlerts((await exceptionRow(t, shop.id, failed)).id)).toBe(1);

    const succeeded = await newException('after-succeeded');
    const two = await inFlight(succeeded);
    two.post.answer(200);
    expect((await two.answer).json().exception.status).toBe('RETRIED_SUCCESS');
    const refused = await acknowledge(succeeded);
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ from: 'RETRIED_SUCCESS', to: 'ACKNOWLEDGED' });
  });

  it('keeps an acknowledgement made after a repeat reopened the exception, whatever the retry then says', async () => {
    const id = `reopened-${uuidv7()}`;
    const event = {
      type: 'CollectionRejected',
      data: { transactionId: id, collectionId: 'C-1', reason: 'ECONNRESET' },
    };
    expect((await writeInbound(t, shop, [event])).statusCode).toBe(202);
    const { answer, post } = await inFlight(id);
    expect((await resolve(id)).statusCode).toBe(200);
    // The same failure reported again reopens it while the retry is still under way.
    expect((await writeInbound(t, shop, [event])).statusCode).toBe(202);
    expect((await exceptionRow(t, shop.id, id)).status).toBe('NEW');
    const busy = await retry(id);
    expect(busy.statusCode).toBe(409);
    expect(busy.json().code).toBe('RETRY_IN_PROGRESS');
    const acknowledged = await acknowledge(id);
    expect(acknowledged.statusCode, acknowledged.body).toBe(200);

    post.answer(422);
    const retried = await answer;
    expect(retried.json().attempt).toMatchObject({ status: 'failed' });
    expect(retried.json().exception).toMatchObject({ status: 'ACKNOWLEDGED', retryCount: 1 });
    expect((await auditOf(id)).map((a) => a.action)).toEqual([
      'captured',
      'retry.requested',
      'resolved',
      'reopened',
      'acknowledged',
      'retry.failed',
      // Acknowledged is open: the failure is alerted.
      'alert.fired',
    ]);
    await expectAuditAgreesWithRow(id);
  });

  it('ends every race of a retry, an acknowledgement and a resolve resolved, with one audit entry per move', async () => {
    for (let round = 0; round < 16; round += 1) {
      const id = await newException(`race-${round}`);
      const answers = await Promise.all([retry(id), acknowledge(id), resolve(id)]);
      const [retried, acknowledged, resolved] = answers;
      expect([201, 409], retried!.body).toContain(retried!.statusCode);
      expect([200, 409], acknowledged!.body).toContain(acknowledged!.statusCode);
      expect(resolved!.statusCode, resolved!.body).toBe(200);
      const row = await exceptionRow(t, shop.id, id);
      const attempts = await overHttp(t)('GET', `${at(id)}/retries`, shop.operator);
      const items = attempts.json().items as Array<{ status: string }>;
      expect(row.status).toBe('RESOLVED');
      expect(row.retry_count).toBe(items.length);
      expect(items.length).toBe(retried!.statusCode === 201 ? 1 : 0);
      expect(items.every((a) => a.status !== 'pending')).toBe(true);
      const actions = (await auditOf(id)).map((a) => a.action);
      expect(actions.filter((a) => a === 'resolved')).toHaveLength(1);
      expect(actions.filter((a) => a === 'acknowledged')).toHaveLength(
        acknowledged!.statusCode === 200 ? 1 : 0,
      );
      expect(actions.filter((a) => a === 'retry.requested')).toHaveLength(items.length);
      await expectAuditAgreesWithRow(id);
    }
  });

  // The interleaving forced: the outcome's transaction begins, then waits (another connection
  // holds its attempt) while a resolve begins after it and commits first. PGlite has one session,
  // so two transactions never meet there.
  it.runIf(testDatabaseKind() === 'postgres')(
    'audits an outcome that waited for a resolve after the resolve (PostgreSQL)',
    async () => {
      const id = await newException('held-outcome');
      const { answer, post } = await inFlight(id);
      const row = await exceptionRow(t, shop.id, id);
      const holder = new pg.Client({ connectionString: t.databaseUrl });
      await holder.connect();
      try {
        await holder.query('begin');
        await holder.query('select 1 from exceptions.retry_attempts where exception_id = $1 for update', [
          row.id,
        ]);
        post.answer(200);
        await until(async () => {
          const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
            sql<{ n: number }>`
              select count(*)::int as n from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'
                and query ilike '%retry_attempts%'`.execute(trx),
          );
          return rows[0]!.n === 1;
        }, 'the outcome waiting for its attempt');
        const resolved = await resolve(id);
        expect(resolved.statusCode, resolved.body).toBe(200);
        await holder.query('commit');
      } finally {
        await holder.end();
      }
      const retried = await answer;
      expect(retried.json().attempt).toMatchObject({ status: 'succeeded' });
      expect(retried.json().exception).toMatchObject({ status: 'RESOLVED' });
      expect((await auditOf(id)).map((a) => a.action)).toEqual([
        'retry.requested',
        'resolved',
        'retry.succeeded',
      ]);
      await expectAuditAgreesWithRow(id);
    },
  );
});
