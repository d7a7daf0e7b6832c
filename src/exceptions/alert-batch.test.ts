import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import type { AlertRule } from './alert-rule-store.ts';
import { alertRows } from './alert-test-fixtures.ts';
import type { ExceptionRow } from './exception-view.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { type FiredAlert, firedPage } from './fired-alert-store.ts';
import type { ExceptionsDb, ExceptionsTrx } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let db: ExceptionsDb;
const { newGroup, newException } = alertRows(() => db);

beforeAll(async () => {
  t = await startExceptionsApp();
  db = t.ctx.db.kysely as ExceptionsDb;
  a = await createOpsTenant(t, 'alert-batch');
});
afterAll(() => t.close());

const inTenant = <T>(fn: (trx: ExceptionsTrx) => Promise<T>) =>
  withTenant(db, a.id, (trx) => fn(trx as ExceptionsTrx));
const captured = (rows: ExceptionRow[]) => inTenant((trx) => t.exceptions.hooks.onCaptured(trx, a.id, rows));

async function addRule(body: Record<string, unknown>): Promise<AlertRule> {
  const res = await send(t.app, 'POST', '/api/v1/exceptions/alerts', a.admin, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<AlertRule>();
}

async function fired(ruleId: string): Promise<FiredAlert[]> {
  const res = await send(t.app, 'GET', '/api/v1/exceptions/alerts/fired?state=all&limit=100', a.operator);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ items: FiredAlert[] }>().items.filter((x) => x.ruleId === ruleId);
}

/** The CriticalExceptionAlert events of these alerts in the tenant's exception-events. */
const alertEvents = (ids: string[]) =>
  inTenant(async (trx) => {
    const { rows } = await sql<{ subject: string; payload: unknown }>`
      select headers->>'ce-subject' as subject, payload from wal.messages
      where namespace = 'exception-events' and headers->>'ce-type' = 'mercato.exception.critical-alert'
        and headers->>'ce-subject' = any(${ids}::text[])`.execute(trx);
    return rows.map((r) => ({
      subject: r.subject,
      data: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as {
        alert: FiredAlert;
        impact: FiredAlert['impact'];
      },
    }));
  });

/**
 * Counts the UPDATE statements on exceptions.alerts while `fn` runs: a statement-level trigger in
 * the test database (an INSERT … ON CONFLICT DO UPDATE fires it once too), dropped after.
 */
async function alertUpdateStatements(fn: () => Promise<void>): Promise<number> {
  await sql`create table public.alert_updates (n int not null)`.execute(db);
  await sql`insert into public.alert_updates values (0)`.execute(db);
  await sql`create function public.count_alert_updates() returns trigger language plpgsql
    security definer set search_path = public
    as $$ begin update public.alert_updates set n = n + 1; return null; end $$`.execute(db);
  await sql`create trigger count_alert_updates after update on exceptions.alerts
    for each statement execute function public.count_alert_updates()`.execute(db);
  try {
    await fn();
    const { rows } = await sql<{ n: number }>`select n from public.alert_updates`.execute(db);
    return rows[0]!.n;
  } finally {
    await sql`drop trigger count_alert_updates on exceptions.alerts`.execute(db);
    await sql`drop function public.count_alert_updates()`.execute(db);
    await sql`drop table public.alert_updates`.execute(db);
  }
}

describe('firing many alerts in one capture batch', () => {
  it('records every alert with its impact, suppressed count, audit and event, updating the alerts in one statement for their impacts', async () => {
    const rule = await addRule({ name: 'critical batch', kind: 'severity', minSeverity: 'CRITICAL' });
    const GROUPS = 12;
    const pairs: Array<{ group: string; first: ExceptionRow; second: ExceptionRow }> = [];
    for (let i = 0; i < GROUPS; i++) {
      const group = await newGroup(a);
      const money = { amount: 100 * (i + 1), currency: 'EUR' };
      const first = await newException(a, group, { customer: `c${i}`, order: `o${i}`, ...money });
      const second = await newException(a, group, { customer: `c${i}`, occurrences: 3, ...money });
      pairs.push({ group, first, second });
    }
    const statements = await alertUpdateStatements(() => captured(pairs.flatMap((p) => [p.first, p.second])));
    // The upsert of the alerts, then one update of the new alerts' impacts (it was one per alert).
    expect(statements).toBe(2);

    const alerts = await fired(rule.id);
    expect(alerts).toHaveLength(GROUPS);
    // One transaction: every alert fired at its time.
    expect(new Set(alerts.map((x) => x.firedAt)).size).toBe(1);
    for (const [i, { group, first }] of pairs.entries()) {
      const alert = alerts.find((x) => x.groupId === group);
      expect(alert).toMatchObject({ exceptionId: first.id, suppressed: 1, escalationTeam: 'payments' });
      expect(alert!.impact).toMatchObject({
        exceptions: 2,
        occurrences: 4,
        affectedCustomers: 1,
        affectedOrders: 1,
        moneyAtStake: [{ currency: 'EUR', amount: 200 * (i + 1) }],
        exact: true,
      });
    }
    const events = await alertEvents(alerts.map((x) => x.id));
    expect(events).toHaveLength(GROUPS);
    for (const event of events) {
      const alert = alerts.find((x) => x.id === event.subject)!;
      expect(event.data.impact).toEqual(alert.impact);
      expect(event.data.alert).toMatchObject({ id: alert.id, suppressed: 1, impact: alert.impact });
    }
    const audits = await inTenant((trx) =>
      trx
        .selectFrom('exceptions.audit')
        .select('exception_id')
        .where('action', '=', 'alert.fired')
        .where(
          'exception_id',
          'in',
          pairs.map((p) => p.first.id),
        )
        .execute(),
    );
    expect(audits).toHaveLength(GROUPS);

    // While they are open, the next batch only adds to their suppressed: no update of an impact.
    const again = await Promise.all(pairs.map((p) => newException(a, p.group)));
    expect(await alertUpdateStatements(() => captured(again))).toBe(1);
    const after = await fired(rule.id);
    expect(after.map((x) => x.suppressed)).toEqual(alerts.map(() => 2));
    expect(after.map((x) => x.impact)).toEqual(alerts.map((x) => x.impact));
    expect(await alertEvents(alerts.map((x) => x.id))).toHaveLength(GROUPS);
  });
});

describe('open alerts', () => {
  it("reads a tenant's open alerts through alerts_open_tenant: neither its acknowledged alerts nor other tenants' open ones", async () => {
    const other = await createOpsTenant(t, 'alert-batch-other');
    const rule = async (tenant: OpsTenant) => {
      const res = await send(t.app, 'POST', '/api/v1/exceptions/alerts', tenant.admin, {
        name: 'open index',
        kind: 'severity',
        minSeverity: 'HIGH',
      });
      expect(res.statusCode, res.body).toBe(201);
      return res.json<AlertRule>().id;
    };
    /** `open` open alerts and `acknowledged` acknowledged ones of the tenant, each of a group of its own. */
    const alerts = async (tenant: OpsTenant, open: number, acknowledged: number) => {
      const ruleId = await rule(tenant);
      await withTenant(db, tenant.id, (trx) =>
        sql`
          with g as (
            insert into exceptions.groups (id, tenant_id, fingerprint, exceptions, interface_type, category,
              normalized_reason, severity, first_seen, last_seen)
            select gen_random_uuid(), ${tenant.id}, gen_random_uuid()::text, 1, 'ORDER', 'BUSINESS_RULE',
              'payment declined', 'CRITICAL', now(), now()
            from generate_series(1, ${open + acknowledged})
            returning id
          )
          insert into exceptions.alerts (id, tenant_id, rule_id, group_id, escalation_team, impact,
            acknowledged_at, acknowledged_by)
          select gen_random_uuid(), ${tenant.id}, ${ruleId}, g.id, 'payments', '{}',
            case when n > ${open} then now() end, case when n > ${open} then 'user:x' end
          from (select id, row_number() over () as n from g) as g`.execute(trx),
      );
    };
    await alerts(a, 3, 2000);
    await alerts(other, 2000, 0);
    await sql`analyze exceptions.alerts`.execute(db);
    const plan = await inTenant(async (trx) => {
      const rows = await firedPage(trx, { state: 'open', limit: 50, cursor: undefined }).explain('json');
      return JSON.stringify(rows[0]);
    });
    expect(plan).toContain('"Index Name":"alerts_open_tenant"');
    expect(plan).not.toMatch(/"Index Name":"alerts_(open|tenant)"/);
  });
});
