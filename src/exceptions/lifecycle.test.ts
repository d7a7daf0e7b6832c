import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { apiKeyOf, asTenant, customerOf, exceptionUrl, seedExceptions } from './exceptions-seed-fixtures.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import type { ExceptionStatus } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;

const many = (customerId: string, statuses: ExceptionStatus[], extra: object = {}) =>
  statuses.map((status, i) => ({ transactionId: `${customerId}-${i}`, customerId, status, ...extra }));

beforeAll(async () => {
  t = await startExceptionsApp();
  [a, b] = [await createOpsTenant(t, 'exl-a'), await createOpsTenant(t, 'exl-b')];
  await seedExceptions(t, a.id, [
    { transactionId: 'L-1' },
    { transactionId: 'L-2' },
    { transactionId: 'L-CLOSED', status: 'CLOSED' },
    { transactionId: 'L-RETRYING', status: 'RETRY_IN_PROGRESS' },
    { transactionId: 'L/odd id?&%' },
    ...many('bulk-ack', ['NEW', 'NEW', 'NEW', 'NEW', 'ACKNOWLEDGED', 'CLOSED', 'RETRIED_FAILED']),
    ...many('bulk-res', ['NEW', 'NEW', 'NEW', 'ACKNOWLEDGED', 'RESOLVED', 'RETRY_IN_PROGRESS']),
    ...many('bulk-retry', ['NEW', 'ACKNOWLEDGED']),
    {
      transactionId: 'bulk-retry-spent',
      customerId: 'bulk-retry',
      retryable: true,
      retryCount: 2,
      retryLimit: 2,
    },
    ...many('bulk-idem', ['NEW', 'NEW']),
  ]);
  await seedExceptions(t, b.id, [{ transactionId: 'L-1' }, ...many('bulk-ack', ['NEW', 'NEW'])]);
});
afterAll(() => t?.close());

const put = (id: string, change: string, headers: Record<string, string>, body?: unknown) =>
  send(t.app, 'PUT', exceptionUrl(id, `/${change}`), headers, body);
const bulk = (body: unknown, headers = a.operator) =>
  send(t.app, 'POST', '/api/v1/exceptions/bulk', headers, body);

/** The audit actions of an exception of tenant, oldest first. */
const auditOf = (tenant: OpsTenant, transactionId: string) =>
  asTenant(t, tenant.id, async (trx) => {
    const { rows } = await sql<{ action: string; details: Record<string, unknown> | null }>`
      select a.action, a.details from exceptions.audit a join exceptions.exceptions e on e.id = a.exception_id
      where e.transaction_id = ${transactionId} order by a.at, a.id`.execute(trx);
    return rows;
  });

const statusOf = (tenant: OpsTenant, transactionId: string) =>
  asTenant(
    t,
    tenant.id,
    async (trx) =>
      (
        await trx
          .selectFrom('exceptions.exceptions')
          .select('status')
          .where('transaction_id', '=', transactionId)
          .executeTakeFirstOrThrow()
      ).status,
  );

/** The transaction ids of the tenant's ExceptionResolved events in exception-events (their data's). */
const resolvedEvents = (tenant: OpsTenant) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ subject: string }>`
      select payload->>'transactionId' as subject from wal.messages
      where tenant_id = ${tenant.id} and namespace = 'exception-events'
        and headers->>'ce-type' = 'mercato.exception.resolved'
      order by id`.execute(trx);
    return rows.map((r) => r.subject);
  });

describe('acknowledge, resolve and close', () => {
  it('acknowledges with who, when and the note, once: a repeat answers the same without a second audit entry', async () => {
    const first = await put('L-1', 'acknowledge', a.operator, { note: 'on it' });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ status: 'ACKNOWLEDGED', acknowledgeNote: 'on it' });
    expect(first.json().acknowledgedBy).toMatch(/^user:/);
    const again = await put('L-1', 'acknowledge', a.operator, { note: 'still on it' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({
      acknowledgeNote: 'on it',
      acknowledgedAt: first.json().acknowledgedAt,
    });
    expect(await auditOf(a, 'L-1')).toEqual([
      { action: 'acknowledged', details: { from: 'NEW', to: 'ACKNOWLEDGED' } },
    ]);
    expect(await statusOf(b, 'L-1')).toBe('NEW');
  });

  it('resolves with a resolution and closes, each audited once, each announcing ExceptionResolved', async () => {
    const resolved = await put('L-1', 'resolve', a.operator, {
      resolution: 'fixed',
      note: 'carrier is back',
    });
    expect(resolved.statusCode, resolved.body).toBe(200);
    expect(resolved.json()).toMatchObject({
      status: 'RESOLVED',
      resolution: 'fixed',
      resolveNote: 'carrier is back',
    });
    expect(resolved.json().resolvedBy).toMatch(/^user:/);
    expect((await put('L-1', 'resolve', a.operator, { resolution: 'duplicate' })).json().resolution).toBe(
      'fixed',
    );
    expect(await resolvedEvents(a)).toEqual(['L-1']);
    const closed = await put('L-1', 'close', a.operator, { note: 'done' });
    expect([closed.statusCode, closed.json().status]).toEqual([200, 'CLOSED']);
    expect((await put('L-1', 'close', a.operator)).statusCode).toBe(200);
    expect((await auditOf(a, 'L-1')).map((e) => e.action)).toEqual(['acknowledged', 'resolved', 'closed']);
    expect(await resolvedEvents(a)).toEqual(['L-1', 'L-1']);
    expect(await resolvedEvents(b)).toEqual([]);
  });

  it('answers 409 ILLEGAL_TRANSITION naming both states, and changes nothing', async () => {
    for (const [id, change, from, to] of [
      ['L-CLOSED', 'acknowledge', 'CLOSED', 'ACKNOWLEDGED'],
      ['L-2', 'close', 'NEW', 'CLOSED'],
      // A retry waiting for its outcome may be resolved (retry.test.ts), not acknowledged.
      ['L-RETRYING', 'acknowledge', 'RETRY_IN_PROGRESS', 'ACKNOWLEDGED'],
    ] as const) {
      const answer = await put(id, change, a.operator, {});
      expect(answer.statusCode, id).toBe(409);
      expect(answer.json()).toMatchObject({ code: 'ILLEGAL_TRANSITION', from, to });
      expect(answer.json().detail).toContain(`${from} to ${to}`);
      expect(await auditOf(a, id)).toEqual([]);
      expect(await statusOf(a, id)).toBe(from);
    }
    // Resolving needs no acknowledgement first.
    expect((await put('L-2', 'resolve', a.operator, { resolution: 'wont_fix' })).json().status).toBe(
      'RESOLVED',
    );
  });

  it('takes ids with any character, URL-encoded, and answers 404 for a missing or another tenant’s', async () => {
    expect((await put('L/odd id?&%', 'acknowledge', b.operator, {})).statusCode).toBe(404);
    expect((await put('nope', 'acknowledge', a.operator, {})).statusCode).toBe(404);
    expect(await statusOf(a, 'L/odd id?&%')).toBe('NEW');
    const mine = await put('L/odd id?&%', 'acknowledge', a.operator, {});
    expect([mine.statusCode, mine.json().transactionId]).toEqual([200, 'L/odd id?&%']);
  });

  it('answers 400 naming the field for a missing resolution, an over-long note or an unknown field', async () => {
    for (const [change, body, pointer] of [
      ['resolve', {}, '/resolution'],
      ['resolve', { resolution: '' }, '/resolution'],
      ['resolve', { resolution: 'x'.repeat(201) }, '/resolution'],
      ['acknowledge', { note: 'x'.repeat(4001) }, '/note'],
      ['acknowledge', { status: 'RESOLVED' }, '/status'],
    ] as const) {
      const answer = await put('L-RETRYING', change, a.operator, body);
      expect(answer.statusCode, JSON.stringify(body)).toBe(400);
      expect(answer.json().errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    }
  });

  it('is for operators and admins, or a key with exceptions:write (exceptions:read may only look)', async () => {
    const reader = await apiKeyOf(t, a, ['exceptions:read']);
    for (const [who, headers, status] of [
      ['staff', a.staff, 403],
      ['customer', await customerOf(t, a), 403],
      ['a reading key', reader, 403],
      ['anonymous', {}, 401],
    ] as const) {
      expect((await put('L-RETRYING', 'acknowledge', headers, {})).statusCode, who).toBe(status);
      expect((await bulk({ action: 'acknowledge', all: true }, headers)).statusCode, who).toBe(status);
    }
    const writer = await apiKeyOf(t, a, ['exceptions:write']);
    const byKey = await put('L-2', 'close', writer, {});
    expect([byKey.statusCode, byKey.json().status]).toEqual([200, 'CLOSED']);
    const admin = await put('L/odd id?&%', 'resolve', a.admin, { resolution: 'fixed' });
    expect(admin.statusCode).toBe(200);
  });
});

describe('POST /exceptions/bulk', () => {
  it('acknowledges what the filter matches, counting what it skipped, with an audit entry each', async () => {
    const answer = await bulk({
      action: 'acknowledge',
      filter: { customerId: 'bulk-ack' },
      note: 'incident 7',
    });
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toEqual({ matched: 7, changed: 5, skipped: 2, truncated: false });
    for (const [i, status] of [
      'ACKNOWLEDGED',
      'ACKNOWLEDGED',
      'ACKNOWLEDGED',
      'ACKNOWLEDGED',
      'ACKNOWLEDGED',
      'CLOSED',
      'ACKNOWLEDGED',
    ].entries()) {
      expect(await statusOf(a, `bulk-ack-${i}`)).toBe(status);
    }
    expect(await auditOf(a, 'bulk-ack-6')).toEqual([
      { action: 'acknowledged', details: { from: 'RETRIED_FAILED', to: 'ACKNOWLEDGED', bulk: true } },
    ]);
    expect(await auditOf(a, 'bulk-ack-4')).toEqual([]);
    expect(await statusOf(b, 'bulk-ack-0')).toBe('NEW');
  });

  it('resolves by filter with a resolution, announcing each', async () => {
    const before = (await resolvedEvents(a)).length;
    const answer = await bulk({
      action: 'resolve',
      filter: { customerId: 'bulk-res', status: 'NEW,ACKNOWLEDGED,RESOLVED,RETRY_IN_PROGRESS' },
      resolution: 'duplicate',
    });
    expect(answer.json()).toEqual({ matched: 6, changed: 5, skipped: 1, truncated: false });
    const events = (await resolvedEvents(a)).slice(before).sort();
    expect(events).toEqual(['bulk-res-0', 'bulk-res-1', 'bulk-res-2', 'bulk-res-3', 'bulk-res-5']);
    expect(await auditOf(a, 'bulk-res-3')).toEqual([
      {
        action: 'resolved',
        details: { from: 'ACKNOWLEDGED', to: 'RESOLVED', bulk: true, resolution: 'duplicate' },
      },
    ]);
    // A retry waiting for its outcome is resolved too; the one already resolved is skipped.
    expect(await statusOf(a, 'bulk-res-5')).toBe('RESOLVED');
    expect(await statusOf(a, 'bulk-res-4')).toBe('RESOLVED');
  });

  it('retries only what may be retried, counting the rest as skipped', async () => {
    const answer = await bulk({ action: 'retry', filter: { customerId: 'bulk-retry' } });
    expect(answer.statusCode, answer.body).toBe(200);
    expect(answer.json()).toMatchObject({ matched: 3, changed: 0, skipped: 3, failed: 0, truncated: false });
  });

  it('replays its answer for a repeated Idempotency-Key instead of acting again', async () => {
    const body = { action: 'acknowledge', filter: { customerId: 'bulk-idem' } };
    const headers = { ...a.operator, 'idempotency-key': 'bulk-idem-1' };
    const first = await bulk(body, headers);
    expect(first.json()).toEqual({ matched: 2, changed: 2, skipped: 0, truncated: false });
    const again = await bulk(body, headers);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect((await bulk(body)).json()).toEqual({ matched: 2, changed: 0, skipped: 2, truncated: false });
  });

  it('answers 400 for an empty filter without all: true, and for fields its action does not take', async () => {
    for (const [body, pointer] of [
      [{ action: 'acknowledge' }, '/filter'],
      [{ action: 'acknowledge', filter: {} }, '/filter'],
      [{ action: 'acknowledge', all: false }, '/all'],
      [{ action: 'resolve', all: true }, '/resolution'],
      [{ action: 'acknowledge', all: true, resolution: 'fixed' }, '/resolution'],
      [{ action: 'retry', all: true, note: 'why' }, '/note'],
      [{ action: 'delete', all: true }, '/action'],
      [{ action: 'acknowledge', filter: { status: 'GONE' } }, '/filter/status'],
      [{ action: 'acknowledge', filter: { tenantId: b.id } }, '/filter/tenantId'],
    ] as const) {
      const answer = await bulk(body);
      expect(answer.statusCode, JSON.stringify(body)).toBe(400);
      expect(
        answer.json().errors.map((e: { pointer: string }) => e.pointer),
        JSON.stringify(body),
      ).toContain(pointer);
    }
  });

  it("acts on every exception of the caller's tenant only with all: true", async () => {
    const answer = await bulk({ action: 'acknowledge', all: true }, b.operator);
    expect(answer.json()).toEqual({ matched: 3, changed: 3, skipped: 0, truncated: false });
    expect(await statusOf(a, 'L-RETRYING')).toBe('RETRY_IN_PROGRESS');
    expect(await statusOf(b, 'bulk-ack-1')).toBe('ACKNOWLEDGED');
  });
});
