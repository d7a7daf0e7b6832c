import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import { addUser, auth } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { AlertRule } from './alert-rule-store.ts';
import { alertRows } from './alert-test-fixtures.ts';
import { escalationTeam } from './escalation.ts';
import type { ExceptionRow } from './exception-view.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import type { FiredAlert } from './fired-alert-store.ts';
import type { ExceptionsDb, InterfaceType } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;
let db: ExceptionsDb;

beforeAll(async () => {
  t = await startExceptionsApp();
  db = t.ctx.db.kysely as ExceptionsDb;
  a = await createOpsTenant(t, 'alerts-a');
  b = await createOpsTenant(t, 'alerts-b');
});
afterAll(() => t.close());

const { newGroup, newException } = alertRows(() => db);

const captured = (tenant: OpsTenant, rows: ExceptionRow[]) =>
  withTenant(db, tenant.id, (trx) => t.exceptions.hooks.onCaptured(trx, tenant.id, rows));

async function addRule(tenant: OpsTenant, body: Record<string, unknown>): Promise<AlertRule> {
  const res = await send(t.app, 'POST', '/api/v1/exceptions/alerts', tenant.admin, body);
  expect(res.statusCode, res.body).toBe(201);
  return res.json<AlertRule>();
}

const ruleAlerts = async (tenant: OpsTenant, ruleId: string, state = 'all') => {
  const res = await send(
    t.app,
    'GET',
    `/api/v1/exceptions/alerts/fired?state=${state}&limit=100`,
    tenant.operator,
  );
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ items: FiredAlert[] }>().items.filter((x) => x.ruleId === ruleId);
};

/** The rule's CriticalExceptionAlert events in the tenant's exception-events, oldest first. */
async function alertEvents(tenant: OpsTenant, ruleId: string) {
  const rows = await withTenant(db, tenant.id, async (trx) => {
    const { rows } = await sql<{ subject: string; correlation: string | null; payload: unknown }>`
      select headers->>'ce-subject' as subject, headers->>'ce-correlationid' as correlation, payload
      from wal.messages
      where namespace = 'exception-events' and headers->>'ce-type' = 'mercato.exception.critical-alert'
      order by id`.execute(trx);
    return rows;
  });
  const events = rows.map((r) => ({
    subject: r.subject,
    correlation: r.correlation,
    data: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as {
      alert: FiredAlert;
      rule: AlertRule;
      exception: { transactionId: string };
      escalationTeam: string;
      impact: FiredAlert['impact'];
    },
  }));
  return events.filter((e) => e.data.rule.id === ruleId);
}

const auditOf = (tenant: OpsTenant, exceptionId: string) =>
  withTenant(db, tenant.id, (trx) =>
    trx
      .selectFrom('exceptions.audit')
      .select(['action', 'actor', 'note'])
      .where('exception_id', '=', exceptionId)
      .orderBy('at')
      .execute(),
  );

describe('alert rules', () => {
  it('adds, reads, lists, changes and deletes a rule', async () => {
    const rule = await addRule(a, {
      name: 'critical orders',
      kind: 'severity',
      minSeverity: 'HIGH',
      interfaceType: 'ORDER',
    });
    expect(rule).toMatchObject({
      name: 'critical orders',
      enabled: true,
      kind: 'severity',
      minSeverity: 'HIGH',
      failedRetries: null,
      interfaceType: 'ORDER',
      category: null,
    });
    const got = await send(t.app, 'GET', `/api/v1/exceptions/alerts/${rule.id}`, a.operator);
    expect(got.json()).toEqual(rule);

    // A change of kind drops the former kind's fields and asks for the new kind's.
    const changed = await send(t.app, 'PUT', `/api/v1/exceptions/alerts/${rule.id}`, a.operator, {
      kind: 'rate',
      threshold: 10,
      windowMinutes: 5,
      enabled: false,
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({
      kind: 'rate',
      threshold: 10,
      windowMinutes: 5,
      enabled: false,
      minSeverity: 'HIGH',
    });

    const listed = await send(t.app, 'GET', '/api/v1/exceptions/alerts?kind=rate', a.operator);
    expect(listed.json<{ items: AlertRule[] }>().items.map((r) => r.id)).toContain(rule.id);
    const page = await send(t.app, 'GET', '/api/v1/exceptions/alerts?limit=1', a.operator);
    expect(page.json<{ nextCursor: string | null }>().nextCursor).toBeNull();

    expect((await send(t.app, 'DELETE', `/api/v1/exceptions/alerts/${rule.id}`, a.operator)).statusCode).toBe(
      204,
    );
    expect((await send(t.app, 'GET', `/api/v1/exceptions/alerts/${rule.id}`, a.operator)).statusCode).toBe(
      404,
    );
  });

  it('answers 400 naming the failing field for bad rules', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'x', kind: 'severity' }, '/minSeverity'],
      [{ name: 'x', kind: 'retries', minSeverity: 'HIGH' }, '/failedRetries'],
      [{ name: 'x', kind: 'rate', threshold: 5 }, '/windowMinutes'],
      [{ name: 'x', kind: 'severity', minSeverity: 'HIGH', threshold: 3 }, '/threshold'],
      [{ name: 'x', kind: 'rate', threshold: 0, windowMinutes: 5 }, '/threshold'],
      [{ name: 'x', kind: 'rate', threshold: 5, windowMinutes: 10_081 }, '/windowMinutes'],
      [{ name: 'x'.repeat(201), kind: 'severity', minSeverity: 'LOW' }, '/name'],
      [{ name: 'x', kind: 'sometimes', minSeverity: 'LOW' }, '/kind'],
      [{ name: 'x', kind: 'severity', minSeverity: 'SEVERE' }, '/minSeverity'],
      [{ name: 'x', kind: 'severity', minSeverity: 'LOW', match: 'DROP TABLE' }, ''],
    ];
    for (const [body, pointer] of cases) {
      const res = await send(t.app, 'POST', '/api/v1/exceptions/alerts', a.admin, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const errors = res.json<{ errors?: Array<{ pointer: string }> }>().errors ?? [];
      if (pointer)
        expect(
          errors.map((e) => e.pointer),
          JSON.stringify(body),
        ).toContain(pointer);
    }
    const rule = await addRule(a, { name: 'retries', kind: 'retries', failedRetries: 3 });
    const bad = await send(t.app, 'PUT', `/api/v1/exceptions/alerts/${rule.id}`, a.admin, {
      windowMinutes: 5,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ errors: Array<{ pointer: string }> }>().errors[0]!.pointer).toBe('/windowMinutes');
    expect((await send(t.app, 'PUT', `/api/v1/exceptions/alerts/${rule.id}`, a.admin, {})).statusCode).toBe(
      400,
    );
    await send(t.app, 'DELETE', `/api/v1/exceptions/alerts/${rule.id}`, a.admin);
  });

  it('refuses a rule past 100 per tenant with 409 CONFLICT', async () => {
    const c = await createOpsTenant(t, 'alerts-many');
    await withTenant(db, c.id, (trx) =>
      trx
        .insertInto('exceptions.alert_rules')
        .values(
          Array.from({ length: 100 }, (_, i) => ({
            id: uuidv7(),
            tenant_id: c.id,
            name: `rule ${i}`,
            kind: 'severity' as const,
            enabled: true,
            min_severity: 'CRITICAL' as const,
          })),
        )
        .execute(),
    );
    const res = await send(t.app, 'POST', '/api/v1/exceptions/alerts', c.admin, {
      name: 'one too many',
      kind: 'severity',
      minSeverity: 'LOW',
    });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'CONFLICT' });
    const page = await send(t.app, 'GET', '/api/v1/exceptions/alerts?limit=60', c.operator);
    const second = await send(
      t.app,
      'GET',
      `/api/v1/exceptions/alerts?limit=60&cursor=${page.json<{ nextCursor: string }>().nextCursor}`,
      c.operator,
    );
    expect(second.json<{ items: unknown[]; nextCursor: null }>()).toMatchObject({ nextCursor: null });
    expect(second.json<{ items: unknown[] }>().items).toHaveLength(40);
  });

  it('is for operators and admins only: staff and customers 403, anonymous 401, keys by permission', async () => {
    const rule = await addRule(a, { name: 'ops only', kind: 'severity', minSeverity: 'CRITICAL' });
    await addUser(t, a.id, 'customer@alerts-a.test', 'customer');
    const customer = auth((await login(t.app, a.slug, 'customer@alerts-a.test')).accessToken);
    const key = await send(t.app, 'POST', '/api/v1/api-keys', a.admin, {
      name: 'dashboards',
      permissions: ['exceptions:read'],
    });
    const reader = { 'x-api-key': key.json<{ key: string }>().key };
    const routes: Array<['GET' | 'POST' | 'PUT' | 'DELETE', string, unknown?]> = [
      ['GET', '/api/v1/exceptions/alerts'],
      ['POST', '/api/v1/exceptions/alerts', { name: 'n', kind: 'severity', minSeverity: 'LOW' }],
      ['GET', `/api/v1/exceptions/alerts/${rule.id}`],
      ['PUT', `/api/v1/exceptions/alerts/${rule.id}`, { name: 'renamed' }],
      ['DELETE', `/api/v1/exceptions/alerts/${rule.id}`],
      ['GET', '/api/v1/exceptions/alerts/fired'],
      ['PUT', `/api/v1/exceptions/alerts/fired/${uuidv7()}/acknowledge`, {}],
    ];
    for (const [method, url, body] of routes) {
      expect((await send(t.app, method, url, a.staff, body)).statusCode, `${method} ${url}`).toBe(403);
      expect((await send(t.app, method, url, customer, body)).statusCode, `${method} ${url}`).toBe(403);
      expect((await send(t.app, method, url, {}, body)).statusCode, `${method} ${url}`).toBe(401);
      expect((await send(t.app, method, url, a.writer, body)).statusCode, `${method} ${url}`).toBe(403);
      expect((await send(t.app, method, url, reader, body)).statusCode, `${method} ${url}`).toBe(
        method === 'GET' ? 200 : 403,
      );
    }
  });
});

describe('firing', () => {
  it('fires once per rule and group: one alert, suppressed, one CriticalExceptionAlert; acknowledged, the next firing is new', async () => {
    const rule = await addRule(a, {
      name: 'critical',
      kind: 'severity',
      minSeverity: 'CRITICAL',
      category: 'BUSINESS_RULE',
    });
    const group = await newGroup(a);
    const before = (await alertEvents(a, rule.id)).length;
    const first = await newException(a, group, {
      customer: 'c1',
      order: 'o1',
      amount: 1000,
      currency: 'EUR',
      occurrences: 2,
    });
    const second = await newException(a, group, {
      customer: 'c1',
      order: 'o2',
      amount: 2500,
      currency: 'EUR',
    });
    const third = await newException(a, group, {
      customer: 'c2',
      amount: 700,
      currency: 'USD',
      severity: 'HIGH',
    });
    // A resolved one is no longer at stake.
    await newException(a, group, {
      customer: 'c9',
      order: 'o9',
      amount: 99_999,
      currency: 'EUR',
      status: 'RESOLVED',
    });

    await captured(a, [first]);
    await captured(a, [second, third]);
    const [alert, ...others] = await ruleAlerts(a, rule.id);
    expect(others).toEqual([]);
    expect(alert).toMatchObject({
      ruleName: 'critical',
      kind: 'severity',
      groupId: group,
      exceptionId: first.id,
      transactionId: first.transaction_id,
      escalationTeam: 'payments',
      suppressed: 1,
      acknowledgedAt: null,
    });
    expect(alert!.impact).toMatchObject({
      exceptions: 3,
      occurrences: 4,
      affectedCustomers: 2,
      affectedOrders: 2,
      moneyAtStake: [
        { currency: 'EUR', amount: 3500 },
        { currency: 'USD', amount: 700 },
      ],
    });
    const events = (await alertEvents(a, rule.id)).slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ subject: alert!.id, correlation: 'corr-alerts' });
    expect(events[0]!.data).toMatchObject({
      alert: { id: alert!.id, suppressed: 0 },
      rule: { id: rule.id, kind: 'severity' },
      exception: { transactionId: first.transaction_id },
      escalationTeam: 'payments',
      impact: alert!.impact,
    });
    expect(await auditOf(a, first.id)).toContainEqual({
      action: 'alert.fired',
      actor: 'system:alerts',
      note: null,
    });

    const ack = await send(
      t.app,
      'PUT',
      `/api/v1/exceptions/alerts/fired/${alert!.id}/acknowledge`,
      a.operator,
      {
        note: 'card processor incident #12',
      },
    );
    expect(ack.statusCode, ack.body).toBe(200);
    expect(ack.json()).toMatchObject({
      acknowledgeNote: 'card processor incident #12',
      acknowledgedBy: expect.stringMatching(/^user:/),
    });
    const again = await send(
      t.app,
      'PUT',
      `/api/v1/exceptions/alerts/fired/${alert!.id}/acknowledge`,
      a.operator,
      {},
    );
    expect(again.json()).toMatchObject({ acknowledgedAt: ack.json<FiredAlert>().acknowledgedAt });
    const long = await send(
      t.app,
      'PUT',
      `/api/v1/exceptions/alerts/fired/${alert!.id}/acknowledge`,
      a.operator,
      {
        note: 'x'.repeat(4001),
      },
    );
    expect(long.statusCode).toBe(400);
    expect(long.json<{ errors: Array<{ pointer: string }> }>().errors[0]!.pointer).toBe('/note');
    expect((await auditOf(a, first.id)).filter((x) => x.action === 'alert.acknowledged')).toHaveLength(1);
    expect(await auditOf(a, first.id)).toContainEqual(
      expect.objectContaining({ action: 'alert.acknowledged', note: 'card processor incident #12' }),
    );
    expect(await ruleAlerts(a, rule.id, 'open')).toEqual([]);

    // Two critical exceptions of the group in one batch: one new alert, the second suppressed.
    const fourth = await newException(a, group);
    const fifth = await newException(a, group);
    await captured(a, [fourth, fifth]);
    const open = await ruleAlerts(a, rule.id, 'open');
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ exceptionId: fourth.id, suppressed: 1 });
    expect(open[0]!.id).not.toBe(alert!.id);
    expect((await alertEvents(a, rule.id)).slice(before)).toHaveLength(2);
    expect(await ruleAlerts(a, rule.id, 'all')).toHaveLength(2);
  });

  it('makes one alert when two transactions capture one group at once', async () => {
    const rule = await addRule(a, {
      name: 'race',
      kind: 'severity',
      minSeverity: 'HIGH',
      interfaceType: 'COLLECTION',
    });
    const group = await newGroup(a, { type: 'COLLECTION' });
    const rows = await Promise.all(
      [1, 2].map(() => newException(a, group, { type: 'COLLECTION', severity: 'HIGH' })),
    );
    await Promise.all(rows.map((row) => captured(a, [row])));
    expect(await ruleAlerts(a, rule.id)).toMatchObject([{ groupId: group, suppressed: 1 }]);
    expect(await alertEvents(a, rule.id)).toHaveLength(1);
  });

  it('fires a rate rule when a group passes the threshold within the window, and not before', async () => {
    const rule = await addRule(a, {
      name: 'bursts',
      kind: 'rate',
      threshold: 3,
      windowMinutes: 10,
      interfaceType: 'DISTRIBUTION',
    });
    const reason = {
      type: 'DISTRIBUTION' as const,
      category: 'NETWORK_ERROR' as const,
      reason: 'connection reset by gateway',
    };
    const group = await newGroup(a, reason);
    // Seen an hour ago: outside the window.
    await newException(a, group, { ...reason, severity: 'LOW', minutesAgo: 60 });
    await newException(a, group, { ...reason, severity: 'LOW', minutesAgo: 60 });
    const batch1 = [
      await newException(a, group, { ...reason, severity: 'LOW' }),
      await newException(a, group, { ...reason, severity: 'LOW' }),
    ];
    await captured(a, batch1);
    const third = await newException(a, group, { ...reason, severity: 'LOW' });
    await captured(a, [third]);
    expect(await ruleAlerts(a, rule.id)).toEqual([]);

    // Another interface type's burst does not count for this rule.
    const orders = await newGroup(a, { type: 'ORDER' });
    const burst = [];
    for (let i = 0; i < 5; i++) burst.push(await newException(a, orders, { severity: 'LOW' }));
    await captured(a, burst);
    expect(await ruleAlerts(a, rule.id)).toEqual([]);

    const fourth = await newException(a, group, { ...reason, severity: 'LOW' });
    await captured(a, [fourth]);
    const [alert, ...rest] = await ruleAlerts(a, rule.id);
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({
      groupId: group,
      exceptionId: fourth.id,
      suppressed: 0,
      escalationTeam: 'integrations',
    });
    expect(alert!.impact).toMatchObject({ exceptions: 6, affectedCustomers: 0, moneyAtStake: [] });
    // A rate alert is about the group: no audit entry on the exception that tipped it.
    expect((await auditOf(a, fourth.id)).map((x) => x.action)).not.toContain('alert.fired');
  });

  it('fires a retries rule once an exception has N failed retry attempts', async () => {
    const rule = await addRule(a, { name: 'stubborn', kind: 'retries', failedRetries: 2 });
    const group = await newGroup(a, { type: 'COLLECTION' });
    const row = await newException(a, group, {
      type: 'COLLECTION',
      reason: 'ledger rejected the entry',
      severity: 'MEDIUM',
    });
    const fail = (attempt: number) =>
      withTenant(db, a.id, async (trx) => {
        await trx
          .insertInto('exceptions.retry_attempts')
          .values({
            id: uuidv7(),
            tenant_id: a.id,
            exception_id: row.id,
            attempt,
            action: 'source',
            status: 'failed',
            outcome: 'HTTP 500',
            requested_by: 'user:test',
            finished_at: new Date(),
          })
          .execute();
        await t.exceptions.hooks.onRetryFailed(trx, a.id, row);
      });
    await fail(1);
    expect(await ruleAlerts(a, rule.id)).toEqual([]);
    const before = (await alertEvents(a, rule.id)).length;
    await fail(2);
    const [alert] = await ruleAlerts(a, rule.id);
    expect(alert).toMatchObject({ exceptionId: row.id, escalationTeam: 'finance', suppressed: 0 });
    const [event] = (await alertEvents(a, rule.id)).slice(before);
    expect(event!.data).toMatchObject({
      rule: { kind: 'retries', failedRetries: 2 },
      escalationTeam: 'finance',
    });
    await fail(3);
    expect(await ruleAlerts(a, rule.id)).toMatchObject([{ id: alert!.id, suppressed: 1 }]);
    expect((await auditOf(a, row.id)).filter((x) => x.action === 'alert.fired')).toHaveLength(1);
  });

  it('lists fired alerts newest first by cursor pages, and hides them from other tenants', async () => {
    const rule = await addRule(a, {
      name: 'paging',
      kind: 'severity',
      minSeverity: 'LOW',
      interfaceType: 'VALIDATION',
    });
    const fired = [];
    for (let i = 0; i < 3; i++) {
      const group = await newGroup(a, { type: 'VALIDATION', category: 'VALIDATION' });
      await captured(a, [
        await newException(a, group, {
          type: 'VALIDATION',
          category: 'VALIDATION',
          reason: 'field sku is required',
        }),
      ]);
      fired.push(group);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/exceptions/alerts/fired?state=open&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await send(t.app, 'GET', url, a.operator);
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<{ items: FiredAlert[]; nextCursor: string | null }>();
      seen.push(...page.items.filter((x) => x.ruleId === rule.id).map((x) => x.groupId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...fired].reverse());
    const [newest] = await ruleAlerts(a, rule.id);
    expect(newest!.escalationTeam).toBe('data-quality');

    const bad = await send(
      t.app,
      'GET',
      '/api/v1/exceptions/alerts/fired?cursor=bm90LWEtY3Vyc29y',
      a.operator,
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_CURSOR' });

    expect(
      (await send(t.app, 'GET', `/api/v1/exceptions/alerts/fired/${newest!.id}`, a.operator)).statusCode,
    ).toBe(200);
    expect(
      (await send(t.app, 'GET', `/api/v1/exceptions/alerts/fired/${newest!.id}`, b.operator)).statusCode,
    ).toBe(404);
    const ack = await send(
      t.app,
      'PUT',
      `/api/v1/exceptions/alerts/fired/${newest!.id}/acknowledge`,
      b.operator,
      {},
    );
    expect(ack.statusCode).toBe(404);
    expect(await ruleAlerts(b, rule.id)).toEqual([]);
    for (const method of ['GET', 'DELETE'] as const) {
      expect((await send(t.app, method, `/api/v1/exceptions/alerts/${rule.id}`, b.admin)).statusCode).toBe(
        404,
      );
    }
    expect(
      (await send(t.app, 'PUT', `/api/v1/exceptions/alerts/${rule.id}`, b.admin, { name: 'mine' }))
        .statusCode,
    ).toBe(404);
    const listed = await send(t.app, 'GET', '/api/v1/exceptions/alerts?limit=100', b.operator);
    expect(listed.json<{ items: AlertRule[] }>().items.map((r) => r.id)).not.toContain(rule.id);
    // Tenant B's captures never fire tenant A's rules.
    const theirs = await newGroup(b, { type: 'VALIDATION', category: 'VALIDATION' });
    await captured(b, [await newException(b, theirs, { type: 'VALIDATION', category: 'VALIDATION' })]);
    expect((await ruleAlerts(a, rule.id)).map((x) => x.groupId)).not.toContain(theirs);
  });
});

describe('escalation', () => {
  it('chooses the team by reason, else by interface type', () => {
    const team = (reason: string, interface_type: InterfaceType = 'ORDER') =>
      escalationTeam({ reason, interface_type });
    expect(team('Card declined: insufficient funds')).toBe('payments');
    expect(team('Payment authorization failed', 'COLLECTION')).toBe('payments');
    expect(team('SKU 123 out of stock')).toBe('fulfilment');
    expect(team('inventory reservation expired')).toBe('fulfilment');
    expect(team('upstream timed out after 30s')).toBe('integrations');
    expect(team('Connection refused by ERP')).toBe('integrations');
    expect(team('validation failed: postcode')).toBe('data-quality');
    expect(team('order discarded by the merchant')).toBe('order-operations');
    expect(team('ledger rejected the entry', 'COLLECTION')).toBe('finance');
    expect(team('rejected by the partner', 'DISTRIBUTION')).toBe('logistics');
    expect(team('rejected', 'VALIDATION')).toBe('data-quality');
  });
});
