import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import type { AlertRule } from './alert-rule-store.ts';
import { assessImpact } from './escalation.ts';
import type { ExceptionRow } from './exception-view.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import type { FiredAlert } from './fired-alert-store.ts';
import type { ExceptionsDb, ExceptionsTrx, Severity } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;
let c: OpsTenant;
let db: ExceptionsDb;

beforeAll(async () => {
  t = await startExceptionsApp();
  db = t.ctx.db.kysely as ExceptionsDb;
  a = await createOpsTenant(t, 'rate-rules');
  b = await createOpsTenant(t, 'rate-memo');
  c = await createOpsTenant(t, 'rate-since');
});
afterAll(() => t.close());

/** A group of the tenant (DISTRIBUTION, NETWORK_ERROR) written straight into the table. */
async function newGroup(name: string, tenant = a): Promise<string> {
  const { rows } = await sql<{ id: string }>`
    insert into exceptions.groups (id, tenant_id, fingerprint, interface_type, category, normalized_reason,
      severity, exceptions, occurrences, first_seen, last_seen)
    values (gen_random_uuid(), ${tenant.id}::uuid, ${name}, 'DISTRIBUTION', 'NETWORK_ERROR', ${name}, 'HIGH', 0, 0, now(), now())
    returning id`.execute(db);
  return rows[0]!.id;
}

/** `n` exceptions of the group at `severity`, last seen `minutesAgo` (each a second apart), in one statement. */
async function addExceptions(groupId: string, n: number, severity: Severity, minutesAgo: number, tenant = a) {
  await sql`
    insert into exceptions.exceptions (id, tenant_id, transaction_id, interface_type, event_type, operation, reason,
      category, severity, status, retryable, source_ref, group_id, occurrences, first_seen, last_seen)
    select gen_random_uuid(), ${tenant.id}::uuid, 'tx-' || gen_random_uuid(), 'DISTRIBUTION', 'DistributionFailed', 'ship',
      'connection reset by gateway', 'NETWORK_ERROR', ${severity}, 'NEW', true,
      '{"kind":"source","interfaceType":"DISTRIBUTION","externalId":null}', ${groupId}::uuid, 1, s.seen, s.seen
    from generate_series(1, ${n}::int) i
    cross join lateral (select now() - make_interval(mins => ${minutesAgo}::int, secs => i) as seen) s`.execute(
    db,
  );
}

const newest = async (groupId: string, severity: Severity) =>
  (
    await sql<ExceptionRow>`select * from exceptions.exceptions where group_id = ${groupId}::uuid
      and severity = ${severity} order by last_seen desc limit 1`.execute(db)
  ).rows[0]!;

async function addRule(body: Record<string, unknown>, tenant = a): Promise<AlertRule> {
  const res = await send(t.app, 'POST', '/api/v1/exceptions/alerts', tenant.admin, { kind: 'rate', ...body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<AlertRule>();
}

const alertsOf = async (ruleId: string, tenant = a) => {
  const res = await send(
    t.app,
    'GET',
    '/api/v1/exceptions/alerts/fired?state=all&limit=100',
    tenant.operator,
  );
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ items: FiredAlert[] }>().items.filter((x) => x.ruleId === ruleId);
};

/** The rows and index entries of exceptions.exceptions the transaction read so far (its own statistics). */
async function xactRead(trx: ExceptionsTrx): Promise<number> {
  const { rows: r } = await sql<{ n: string }>`
    select coalesce(sum(pg_stat_get_xact_tuples_returned(c.oid)), 0) as n from pg_class c
    where c.oid = 'exceptions.exceptions'::regclass
      or c.oid in (select indexrelid from pg_index where indrelid = 'exceptions.exceptions'::regclass)`.execute(
    trx,
  );
  return Number(r[0]!.n);
}

/**
 * Captures `rows` (the alert hooks only) and answers how many rows and index entries of
 * exceptions.exceptions the transaction read meanwhile (its own statistics, exact in the
 * transaction, whatever other sessions do).
 */
async function capturedReading(rows: ExceptionRow[], tenant = a): Promise<number> {
  const read = xactRead;
  return withTenant(db, tenant.id, async (trx) => {
    const before = await read(trx);
    await t.exceptions.hooks.onCaptured(trx, tenant.id, rows);
    return (await read(trx)) - before;
  });
}

describe('rate rules', () => {
  it("read at most threshold + 1 of the group's exceptions, however many the tenant and the group hold", async () => {
    const hot = await newGroup('rate-hot');
    // The group's history outside the window, 2,000 exceptions of 200 other groups inside it (a
    // tenant's exceptions span many groups), and 10 of its own inside.
    await addExceptions(hot, 2000, 'LOW', 120);
    for (let g = 0; g < 200; g++) await addExceptions(await newGroup(`rate-busy-${g}`), 10, 'LOW', 5);
    await addExceptions(hot, 10, 'LOW', 1);
    await sql`analyze exceptions.exceptions`.execute(db);
    const rule = await addRule({ name: 'hot under', threshold: 20, windowMinutes: 60 });

    const read = await capturedReading([await newest(hot, 'LOW')]);
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThanOrEqual(21);
    expect(await alertsOf(rule.id)).toEqual([]);
  });

  it('counts only the exceptions matching the rule, past the newest ones that do not', async () => {
    const group = await newGroup('rate-filtered');
    // Inside the window: 4 HIGH, then 30 LOW seen after them (the newest, which the count must skip).
    await addExceptions(group, 4, 'HIGH', 30);
    await addExceptions(group, 30, 'LOW', 1);
    const fires = await addRule({
      name: 'high over 3',
      threshold: 3,
      windowMinutes: 60,
      minSeverity: 'HIGH',
    });
    const quiet = await addRule({
      name: 'high over 4',
      threshold: 4,
      windowMinutes: 60,
      minSeverity: 'HIGH',
    });
    const all = await addRule({ name: 'any over 33', threshold: 33, windowMinutes: 60 });
    const wide = await addRule({ name: 'any over 34', threshold: 34, windowMinutes: 60 });

    const high = await newest(group, 'HIGH');
    await capturedReading([high]);
    expect(await alertsOf(fires.id)).toMatchObject([{ groupId: group, exceptionId: high.id, suppressed: 0 }]);
    expect(await alertsOf(quiet.id)).toEqual([]);
    expect(await alertsOf(all.id)).toMatchObject([{ groupId: group, exceptionId: high.id }]);
    expect(await alertsOf(wide.id)).toEqual([]);

    // Each matching exception of a later batch counts on the open alert.
    await capturedReading([high, await newest(group, 'LOW')]);
    expect(await alertsOf(fires.id)).toMatchObject([{ suppressed: 1 }]);
    expect(await alertsOf(all.id)).toMatchObject([{ suppressed: 2 }]);
    expect(await alertsOf(quiet.id)).toEqual([]);
  });

  it('does not count a group again while it must stay past the threshold, and counts a changed rule afresh', async () => {
    const group = await newGroup('rate-memo', b);
    await addExceptions(group, 6, 'HIGH', 2, b);
    const rule = await addRule({ name: 'memo', threshold: 5, windowMinutes: 60 }, b);
    const row = await newest(group, 'HIGH');
    expect(await capturedReading([row], b)).toBeGreaterThan(0);
    expect(await alertsOf(rule.id, b)).toMatchObject([{ groupId: group, suppressed: 0 }]);

    // Its 6th newest stays in the window for about 58 minutes: no count, every match suppressed.
    expect(await capturedReading([row, row], b)).toBe(0);
    expect(await alertsOf(rule.id, b)).toMatchObject([{ suppressed: 2 }]);

    // A changed rule is counted again: past 6 the group is not past it, nothing more is suppressed.
    const res = await send(t.app, 'PUT', `/api/v1/exceptions/alerts/${rule.id}`, b.admin, { threshold: 6 });
    expect(res.statusCode, res.body).toBe(200);
    expect(await capturedReading([row], b)).toBeGreaterThan(0);
    expect(await alertsOf(rule.id, b)).toMatchObject([{ suppressed: 2 }]);
  });
});

describe('a rate rule below its threshold', () => {
  it('counts only what was seen since its last count while that cannot tip it, and fires past the threshold', async () => {
    const group = await newGroup('rate-since', c);
    // 400 outside the window, 40 inside it seen 20 minutes ago.
    await addExceptions(group, 400, 'LOW', 120, c);
    await addExceptions(group, 40, 'LOW', 20, c);
    await sql`analyze exceptions.exceptions`.execute(db);
    const rule = await addRule({ name: 'since', threshold: 41, windowMinutes: 60 }, c);

    const first = await capturedReading([await newest(group, 'LOW')], c);
    expect(first).toBeGreaterThanOrEqual(40);
    expect(first).toBeLessThanOrEqual(42);
    expect(await alertsOf(rule.id, c)).toEqual([]);

    // One more: exactly the threshold, not past it. Only the exception seen since is read.
    await addExceptions(group, 1, 'LOW', 0, c);
    const second = await capturedReading([await newest(group, 'LOW')], c);
    expect(second).toBeGreaterThan(0);
    expect(second).toBeLessThanOrEqual(2);
    expect(await alertsOf(rule.id, c)).toEqual([]);

    // Another: threshold + 1 fires, on this very batch.
    await addExceptions(group, 1, 'LOW', 0, c);
    const tipping = await newest(group, 'LOW');
    await capturedReading([tipping], c);
    expect(await alertsOf(rule.id, c)).toMatchObject([
      { groupId: group, exceptionId: tipping.id, suppressed: 0 },
    ]);
  });
});

describe("an alert's impact", () => {
  it('says it is exact while the group holds no more exceptions than it reads', async () => {
    const small = await newGroup('impact-small');
    await addExceptions(small, 4, 'LOW', 3);
    const rule = await addRule({ name: 'impact', threshold: 3, windowMinutes: 60 });
    await capturedReading([await newest(small, 'LOW')]);
    expect(await alertsOf(rule.id)).toMatchObject([
      { groupId: small, impact: { exceptions: 4, occurrences: 4, exact: true } },
    ]);
  });

  it("reads at most the cap + 1 newest of the group's exceptions, and then says it is not exact", async () => {
    const cap = 100;
    const huge = await newGroup('impact-huge');
    // 3,000 resolved ones (old), then 150 open ones: the cap's 100 newest are all open.
    await addExceptions(huge, 3000, 'LOW', 90);
    await sql`update exceptions.exceptions set status = 'RESOLVED' where group_id = ${huge}::uuid`.execute(
      db,
    );
    await addExceptions(huge, 150, 'LOW', 3);
    const small = await newGroup('impact-under-cap');
    await addExceptions(small, cap, 'LOW', 3);
    await sql`analyze exceptions.exceptions`.execute(db);

    const { impacts, read } = await withTenant(db, a.id, async (trx) => {
      const before = await xactRead(trx);
      const impacts = await assessImpact(trx, [huge, small], cap);
      return { impacts, read: (await xactRead(trx)) - before };
    });
    expect(impacts.get(huge)).toMatchObject({ exceptions: cap, occurrences: cap, exact: false });
    expect(impacts.get(small)).toMatchObject({ exceptions: cap, exact: true });
    expect(read).toBeGreaterThan(cap);
    expect(read).toBeLessThanOrEqual(2 * (cap + 1));
    // The default cap reads them all: exact.
    const all = await withTenant(db, a.id, (trx) => assessImpact(trx, [huge]));
    expect(all.get(huge)).toMatchObject({ exceptions: 150, exact: true });
  });
});
