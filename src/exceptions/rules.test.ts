import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import { until } from '../checkout/checkout-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
  writeInbound,
} from './exceptions-test-fixtures.ts';
import { MAX_RULES } from './rule-store.ts';
import type { ExceptionsDb, ExceptionsTrx } from './tables.ts';

let t: ExceptionsTestApp;
let ops: OpsTenant;
let other: OpsTenant;

beforeAll(async () => {
  t = await startExceptionsApp();
  ops = await createOpsTenant(t, 'rules-ops');
  other = await createOpsTenant(t, 'rules-other');
});
afterAll(() => t?.close());

const inTenant = <T>(tenantId: string, fn: (trx: ExceptionsTrx) => Promise<T>) =>
  withTenant(t.ctx.db.kysely as ExceptionsDb, tenantId, (trx) => fn(trx as ExceptionsTrx));

const RULES = '/api/v1/exceptions/rules';
type RuleView = {
  id: string;
  position: number;
  match: Record<string, unknown>;
  set: Record<string, unknown>;
};

async function addRule(tenant: OpsTenant, body: Record<string, unknown>): Promise<RuleView> {
  const answer = await send(t.app, 'POST', RULES, tenant.admin, body);
  expect(answer.statusCode, answer.body).toBe(201);
  return answer.json<RuleView>();
}

/** Writes one DistributionFailed and waits for its exception. */
async function capture(
  tenant: OpsTenant,
  transactionId: string,
  reason: string,
  extra: Record<string, unknown> = {},
) {
  const written = await writeInbound(t, tenant, [
    { type: 'DistributionFailed', data: { transactionId, destination: 'carrier', reason, ...extra } },
  ]);
  expect(written.statusCode, written.body).toBe(202);
  let row: { category: string; severity: string; retryable: boolean } | undefined;
  await until(async () => {
    row = await inTenant(tenant.id, (trx) =>
      trx
        .selectFrom('exceptions.exceptions')
        .select(['category', 'severity', 'retryable'])
        .where('transaction_id', '=', transactionId)
        .executeTakeFirst(),
    );
    return row !== undefined;
  }, `${transactionId} captured`);
  return row!;
}

describe('classification rules', () => {
  it('creates, lists, reads, replaces and deletes a rule', async () => {
    const tenant = await createOpsTenant(t, 'rules-crud');
    const created = await send(t.app, 'POST', RULES, tenant.operator, {
      name: 'Carrier X is critical',
      match: { interfaceType: 'DISTRIBUTION', reasonContains: 'carrier x' },
      set: { severity: 'CRITICAL' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const rule = created.json<RuleView>();
    expect(created.headers.location).toBe(`${RULES}/${rule.id}`);
    expect(rule).toMatchObject({
      name: 'Carrier X is critical',
      position: 0,
      enabled: true,
      match: {
        interfaceType: 'DISTRIBUTION',
        operation: null,
        reasonContains: 'carrier x',
        customerId: null,
      },
      set: { category: null, severity: 'CRITICAL', retryable: null },
    });
    const second = await addRule(tenant, { name: 'after', set: { retryable: false } });
    expect(second.position).toBe(10);
    const list = await send(t.app, 'GET', RULES, tenant.operator);
    expect(list.json().items.map((r: RuleView) => r.id)).toEqual([rule.id, second.id]);
    expect((await send(t.app, 'GET', `${RULES}/${rule.id}`, tenant.admin)).json()).toEqual(rule);

    const replaced = await send(t.app, 'PUT', `${RULES}/${rule.id}`, tenant.operator, {
      name: 'Renamed',
      position: 20,
      enabled: false,
      set: { category: 'NETWORK_ERROR' },
    });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json()).toMatchObject({
      name: 'Renamed',
      position: 20,
      enabled: false,
      match: { interfaceType: null, reasonContains: null },
      set: { category: 'NETWORK_ERROR', severity: null },
    });
    expect(
      (await send(t.app, 'GET', RULES, tenant.operator)).json().items.map((r: RuleView) => r.id),
    ).toEqual([second.id, rule.id]);
    expect((await send(t.app, 'DELETE', `${RULES}/${rule.id}`, tenant.operator)).statusCode).toBe(204);
    expect((await send(t.app, 'GET', `${RULES}/${rule.id}`, tenant.operator)).statusCode).toBe(404);
    expect((await send(t.app, 'DELETE', `${RULES}/${rule.id}`, tenant.operator)).statusCode).toBe(404);
  });

  it('overrides the defaults with the first enabled rule that matches, by position', async () => {
    await addRule(ops, {
      name: 'disabled, first',
      position: 0,
      enabled: false,
      match: { reasonContains: 'CARRIER X' },
      set: { severity: 'LOW' },
    });
    await addRule(ops, {
      name: 'carrier X',
      position: 5,
      match: { interfaceType: 'DISTRIBUTION', operation: 'distribution.send', reasonContains: 'CARRIER X' },
      set: { severity: 'CRITICAL', retryable: false },
    });
    await addRule(ops, {
      name: 'carrier X for a key account',
      position: 6,
      match: { reasonContains: 'carrier x', customerId: 'VIP-1' },
      set: { category: 'BUSINESS_RULE' },
    });
    await addRule(ops, {
      name: 'key account',
      position: 7,
      match: { customerId: 'VIP-1' },
      set: { category: 'DUPLICATE', severity: 'HIGH' },
    });
    // Default: a timeout is MEDIUM and retryable; the rule at position 5 makes it CRITICAL, not retryable.
    expect(await capture(ops, 'rule-1', 'Carrier X timed out')).toEqual({
      category: 'TIMEOUT',
      severity: 'CRITICAL',
      retryable: false,
    });
    // Another operation: the rule at 5 does not match; the one at 6 does (the customer matches too).
    expect(
      await capture(ops, 'rule-2', 'carrier x timed out', { operation: 'label.print', customerId: 'VIP-1' }),
    ).toEqual({
      category: 'BUSINESS_RULE',
      severity: 'MEDIUM',
      retryable: true,
    });
    expect(await capture(ops, 'rule-3', 'socket hang up', { customerId: 'VIP-1' })).toEqual({
      category: 'DUPLICATE',
      severity: 'HIGH',
      retryable: true,
    });
    // Neither: the defaults.
    expect(await capture(ops, 'rule-4', 'socket hang up', { customerId: 'VIP-2' })).toEqual({
      category: 'NETWORK_ERROR',
      severity: 'MEDIUM',
      retryable: true,
    });
    // The other tenant's events are not classified by these rules.
    expect(await capture(other, 'rule-1', 'Carrier X timed out')).toMatchObject({ severity: 'MEDIUM' });
  });

  it('answers bad rules with 400 and the failing fields', async () => {
    const good = { name: 'ok', set: { severity: 'HIGH' } };
    const cases: [Record<string, unknown>, string][] = [
      [{ set: { severity: 'HIGH' } }, '/name'],
      [{ ...good, name: '' }, '/name'],
      [{ ...good, name: 'n'.repeat(201) }, '/name'],
      [{ name: 'no settings', set: {} }, '/set'],
      [{ name: 'no settings' }, '/set'],
      [{ ...good, set: { severity: 'URGENT' } }, '/set/severity'],
      [{ ...good, set: { category: 'OOPS' } }, '/set/category'],
      [{ ...good, set: { retryable: 'yes' } }, '/set/retryable'],
      [{ ...good, match: { interfaceType: 'PAYMENT' } }, '/match/interfaceType'],
      [{ ...good, match: { reasonContains: 'r'.repeat(201) } }, '/match/reasonContains'],
      [{ ...good, match: { reasonContains: '' } }, '/match/reasonContains'],
      [{ ...good, match: { reasonRegex: '(a+)+$' } }, '/match/reasonRegex'],
      [{ ...good, position: -1 }, '/position'],
      [{ ...good, position: 10_001 }, '/position'],
      [{ ...good, sql: 'drop table exceptions.rules' }, '/sql'],
    ];
    for (const [body, pointer] of cases) {
      const answer = await send(t.app, 'POST', RULES, ops.admin, body);
      expect(answer.statusCode, `${JSON.stringify(body)}: ${answer.body}`).toBe(400);
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(JSON.stringify(answer.json().errors), JSON.stringify(body)).toContain(pointer);
    }
    const rule = await addRule(ops, good);
    const put = await send(t.app, 'PUT', `${RULES}/${rule.id}`, ops.admin, { name: 'x', set: {} });
    expect(put.statusCode).toBe(400);
    expect((await send(t.app, 'GET', `${RULES}/not-a-uuid`, ops.admin)).statusCode).toBe(400);
  });

  it(`refuses a rule past ${MAX_RULES} per tenant with 409 CONFLICT`, async () => {
    const tenant = await createOpsTenant(t, 'rules-many');
    await inTenant(tenant.id, (trx) =>
      sql`insert into exceptions.rules (id, tenant_id, name, position, set_severity)
        select gen_random_uuid(), ${tenant.id}, 'rule ' || n, n, 'LOW'
        from generate_series(1, ${MAX_RULES - 1}) as n`.execute(trx),
    );
    await addRule(tenant, { name: 'the last place', set: { severity: 'HIGH' } });
    const refused = await send(t.app, 'POST', RULES, tenant.admin, {
      name: 'one too many',
      set: { severity: 'HIGH' },
    });
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().code).toBe('CONFLICT');
    expect((await send(t.app, 'GET', RULES, tenant.admin)).json().items).toHaveLength(MAX_RULES);
  });

  it('is for operators and admins only, and one tenant never sees or changes another’s rules', async () => {
    const rule = await addRule(ops, { name: 'mine', set: { severity: 'LOW' } });
    const url = `${RULES}/${rule.id}`;
    const body = { name: 'taken over', set: { severity: 'CRITICAL' } };
    expect((await send(t.app, 'GET', url, other.operator)).statusCode).toBe(404);
    expect((await send(t.app, 'PUT', url, other.admin, body)).statusCode).toBe(404);
    expect((await send(t.app, 'DELETE', url, other.admin)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', RULES, other.admin)).json().items).toEqual([]);

    const customer = await newCustomer(t, { ...ops, staff: ops.operator });
    for (const [who, headers, status] of [
      ['staff', ops.staff, 403],
      ['customer', customer, 403],
      ['a key without exceptions permissions', ops.writer, 403],
      ['anonymous', {}, 401],
    ] as const) {
      for (const [method, path, payload] of [
        ['GET', RULES, undefined],
        ['GET', url, undefined],
        ['POST', RULES, body],
        ['PUT', url, body],
        ['DELETE', url, undefined],
      ] as const) {
        expect(
          (await send(t.app, method, path, headers, payload)).statusCode,
          `${who} ${method} ${path}`,
        ).toBe(status);
      }
    }
    // A key granted exceptions:read reads, and may not change.
    const key = await send(t.app, 'POST', '/api/v1/api-keys', ops.admin, {
      name: 'dashboards',
      permissions: ['exceptions:read'],
    });
    expect(key.statusCode, key.body).toBe(201);
    const reader = { 'x-api-key': key.json<{ key: string }>().key };
    expect((await send(t.app, 'GET', url, reader)).statusCode).toBe(200);
    expect((await send(t.app, 'PUT', url, reader, body)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', url, ops.operator)).json()).toMatchObject({
      name: 'mine',
      set: { severity: 'LOW' },
    });
  });
});
