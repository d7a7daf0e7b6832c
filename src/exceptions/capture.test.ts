import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import { createStore, placeOrder, product, readyCart, until } from '../checkout/checkout-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import type { CaptureInput } from './capture.ts';
import { prepare } from './capture-prepare.ts';
import { write } from './capture-store.ts';
import { classify, defaultClassification } from './classify.ts';
import { type ExceptionRow, toView } from './exception-view.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
  writeInbound,
} from './exceptions-test-fixtures.ts';
import { fingerprint, normalizeReason } from './fingerprint.ts';
import { creditGroups, foldGroupCredits } from './group-credits.ts';
import type { ExceptionsDb, ExceptionsTrx } from './tables.ts';

let t: ExceptionsTestApp;
let ops: OpsTenant;
let other: OpsTenant;

beforeAll(async () => {
  t = await startExceptionsApp();
  ops = await createOpsTenant(t, 'capture-ops');
  other = await createOpsTenant(t, 'capture-other');
});
afterAll(() => t?.close());

const inTenant = <T>(tenantId: string, fn: (trx: ExceptionsTrx) => Promise<T>) =>
  withTenant(t.ctx.db.kysely as ExceptionsDb, tenantId, (trx) => fn(trx as ExceptionsTrx));

const exceptionOf = (tenantId: string, transactionId: string) =>
  inTenant(tenantId, (trx) =>
    trx
      .selectFrom('exceptions.exceptions')
      .selectAll()
      .where('transaction_id', '=', transactionId)
      .executeTakeFirst(),
  );

/** Waits until the exception is there (and passes `check`); returns it. */
async function captured(
  tenantId: string,
  transactionId: string,
  check: (row: ExceptionRow) => boolean = () => true,
): Promise<ExceptionRow> {
  let row: ExceptionRow | undefined;
  await until(async () => {
    row = await exceptionOf(tenantId, transactionId);
    return row !== undefined && check(row);
  }, `${transactionId} captured`);
  return row!;
}

const auditOf = (tenantId: string, exceptionId: string) =>
  inTenant(tenantId, (trx) =>
    trx
      .selectFrom('exceptions.audit')
      .select(['action', 'actor'])
      .where('exception_id', '=', exceptionId)
      .orderBy('at')
      .orderBy('id')
      .execute(),
  );

let ids = 0;
const txid = (label: string) => `${label}-${++ids}-${Date.now()}`;

describe('classification and fingerprints', () => {
  it('normalizes what varies between occurrences of one failure', () => {
    expect(normalizeReason('Order 1042 rejected:  credit limit 5,000.00 exceeded for "ACME GmbH"')).toBe(
      'order <n> rejected: credit limit <n> exceeded for <value>',
    );
    expect(
      normalizeReason(
        'Customer 0190a6f4-5b7e-7c3d-9a1b-2c3d4e5f6a7b (ops@example.com) sent hash 9f86d081884c7d65',
      ),
    ).toBe('customer <uuid> (<email>) sent hash <hex>');
    expect(normalizeReason('x'.repeat(5000))).toHaveLength(500);
    expect(fingerprint('ORDER', 'TIMEOUT', 'a')).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint('ORDER', 'TIMEOUT', 'a')).not.toBe(fingerprint('ORDER', 'NETWORK_ERROR', 'a'));
  });

  it('applies the documented defaults by interface type and reason', () => {
    const of = (
      interfaceType: 'ORDER' | 'COLLECTION' | 'DISTRIBUTION' | 'VALIDATION',
      reason: string,
      amount = 0,
    ) => defaultClassification({ interfaceType, operation: 'op', reason, amount });
    expect(of('DISTRIBUTION', 'carrier API timed out after 30s')).toEqual({
      category: 'TIMEOUT',
      severity: 'MEDIUM',
      retryable: true,
    });
    expect(of('COLLECTION', 'connect ECONNREFUSED 10.0.0.5:443').category).toBe('NETWORK_ERROR');
    expect(of('COLLECTION', 'upstream answered 503').category).toBe('NETWORK_ERROR');
    expect(of('ORDER', 'order already exists')).toEqual({
      category: 'DUPLICATE',
      severity: 'LOW',
      retryable: false,
    });
    expect(of('ORDER', 'insufficient stock for the required quantity')).toEqual({
      category: 'BUSINESS_RULE',
      severity: 'MEDIUM',
      retryable: false,
    });
    expect(of('ORDER', 'credit limit reached', 250_000).severity).toBe('HIGH');
    expect(of('ORDER', 'card payment declined').severity).toBe('HIGH');
    expect(of('VALIDATION', 'postcode has the wrong format')).toMatchObject({
      category: 'VALIDATION',
      retryable: false,
    });
    expect(of('VALIDATION', 'something odd').category).toBe('VALIDATION');
    expect(of('DISTRIBUTION', 'NullPointerException in allocator')).toEqual({
      category: 'SYSTEM_ERROR',
      severity: 'HIGH',
      retryable: true,
    });
    expect(of('DISTRIBUTION', 'something odd')).toMatchObject({ category: 'UNKNOWN', retryable: true });
  });

  it('lets the first enabled matching rule by position override the defaults', () => {
    const rule = (id: string, over: Record<string, unknown>) =>
      ({
        id,
        tenant_id: 't',
        name: id,
        position: 0,
        enabled: true,
        match_interface_type: null,
        match_operation: null,
        match_reason: null,
        match_customer_id: null,
        set_category: null,
        set_severity: null,
        set_retryable: null,
        created_at: '',
        updated_at: '',
        ...over,
      }) as Parameters<typeof classify>[1][number];
    const rules = [
      rule('off', { enabled: false, set_severity: 'LOW' }),
      rule('vip', { match_customer_id: 'C-1', match_reason: 'TIMED OUT', set_severity: 'CRITICAL' }),
      rule('all', { set_retryable: false }),
    ];
    const input = {
      interfaceType: 'ORDER' as const,
      operation: 'op',
      reason: 'gateway timed out',
      customerId: 'C-1',
    };
    expect(classify(input, rules)).toEqual({
      category: 'TIMEOUT',
      severity: 'CRITICAL',
      retryable: true,
      rule: 'vip',
    });
    expect(classify({ ...input, customerId: 'C-2' }, rules)).toMatchObject({
      severity: 'MEDIUM',
      retryable: false,
    });
  });
});

describe('capture of inbound events', () => {
  it('captures each of the five inbound types with its interface type, category and severity', async () => {
    const cases = [
      {
        type: 'OrderRejected',
        data: {
          orderId: 'SO-1',
          reason: 'Credit limit exceeded for customer',
          amount: 250_000,
          currency: 'EUR',
        },
        want: {
          interface_type: 'ORDER',
          category: 'BUSINESS_RULE',
          severity: 'HIGH',
          retryable: false,
          external_id: 'SO-1',
        },
      },
      {
        type: 'OrderCancelled',
        data: { orderId: 'SO-2', reason: 'Duplicate order submitted twice', cancelledBy: 'erp' },
        want: { interface_type: 'ORDER', category: 'DUPLICATE', severity: 'LOW', retryable: false },
      },
      {
        type: 'CollectionRejected',
        data: {
          collectionId: 'COL-9',
          reason: 'Depot API answered 503 Service Unavailable',
          locationCode: 'HAM-1',
        },
        want: {
          interface_type: 'COLLECTION',
          category: 'NETWORK_ERROR',
          severity: 'MEDIUM',
          retryable: true,
        },
      },
      {
        type: 'DistributionFailed',
        data: { destination: 'carrier:dhl', reason: 'Carrier API timed out after 30s', attempts: 3 },
        want: { interface_type: 'DISTRIBUTION', category: 'TIMEOUT', severity: 'MEDIUM', retryable: true },
      },
      {
        type: 'ValidationError',
        data: {
          reason: 'Shipment rejected by schema',
          errors: [{ field: 'postcode', message: 'is invalid' }],
        },
        want: { interface_type: 'VALIDATION', category: 'VALIDATION', severity: 'MEDIUM', retryable: false },
      },
    ];
    const events = cases.map((c) => ({
      type: c.type,
      data: { transactionId: txid(c.type), customerId: 'C-77', ...c.data },
      headers: { 'ce-correlationid': 'corr-1' },
    }));
    const written = await writeInbound(t, ops, events);
    expect(written.statusCode, written.body).toBe(202);
    for (const [i, c] of cases.entries()) {
      const row = await captured(ops.id, events[i]!.data.transactionId);
      expect(row, c.type).toMatchObject({
        ...c.want,
        event_type: c.type,
        status: 'NEW',
        occurrences: 1,
        customer_id: 'C-77',
        correlation_id: 'corr-1',
        source_ref: { kind: 'source', interfaceType: c.want.interface_type },
      });
      expect(await auditOf(ops.id, row.id)).toEqual([{ action: 'captured', actor: 'system:capture' }]);
    }
    // One written alone through /wal/write, as binary-mode CloudEvents arrive one by one.
    const single = txid('single');
    const one = await send(t.app, 'POST', '/api/v1/wal/write', ops.writer, {
      namespace: 'interface-exceptions',
      payload: { transactionId: single, destination: 'wms', reason: 'NullPointerException in allocation' },
      headers: { 'ce-type': 'DistributionFailed' },
    });
    expect(one.statusCode, one.body).toBe(202);
    expect(await captured(ops.id, single)).toMatchObject({ category: 'SYSTEM_ERROR', severity: 'HIGH' });
    // Another tenant's collector sees none of it.
    expect(await exceptionOf(other.id, single)).toBeUndefined();
  });

  it('counts a repeated transaction id on one exception, and announces each report', async () => {
    const id = txid('repeat');
    const event = (reason: string) => ({
      type: 'DistributionFailed',
      data: { transactionId: id, destination: 'd', reason },
    });
    await writeInbound(t, ops, [event('carrier timed out after 10s')]);
    const first = await captured(ops.id, id);
    await writeInbound(t, ops, [event('carrier timed out after 20s')]);
    const second = await captured(ops.id, id, (row) => row.occurrences === 2);
    expect(second.id).toBe(first.id);
    expect(second.reason).toBe('carrier timed out after 20s');
    expect(new Date(second.last_seen).getTime()).toBeGreaterThan(new Date(first.last_seen).getTime());
    expect(new Date(second.first_seen).getTime()).toBe(new Date(first.first_seen).getTime());
    expect((await auditOf(ops.id, first.id)).map((a) => a.action)).toEqual(['captured', 'repeated']);
    const announced = await inTenant(ops.id, async (trx) => {
      const { rows } = await sql<{ payload: unknown; type: string }>`
        select payload, headers->>'ce-type' as type from wal.messages
        where namespace = 'exception-events' and ordering_key = ${first.id}`.execute(trx);
      return rows.map((r) => ({
        type: r.type,
        ...(typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload),
      }));
    });
    expect(announced.map((m) => m.repeated).sort()).toEqual([false, true]);
    expect(announced[0]).toMatchObject({ type: 'mercato.exception.captured', transactionId: id });
    // Duplicates inside one batch count each.
    const batch = txid('batch');
    const same = {
      type: 'OrderRejected',
      data: { transactionId: batch, orderId: 'SO-5', reason: 'credit limit' },
    };
    expect((await writeInbound(t, ops, [same, same, same])).statusCode).toBe(202);
    const row = await captured(ops.id, batch, (r) => r.occurrences === 3);
    expect((await auditOf(ops.id, row.id)).map((a) => a.action)).toEqual([
      'captured',
      'repeated',
      'repeated',
    ]);
    // The capture's group credit, added to the group as every read of groups does first.
    const group = await inTenant(ops.id, async (trx) => {
      await foldGroupCredits(trx);
      return trx
        .selectFrom('exceptions.groups')
        .selectAll()
        .where('id', '=', row.group_id)
        .executeTakeFirstOrThrow();
    });
    expect(group).toMatchObject({ exceptions: 1 });
    expect(Number(group.occurrences)).toBe(3);
  });

  it('reopens a resolved exception that happens again', async () => {
    const id = txid('regress');
    const event = {
      type: 'CollectionRejected',
      data: { transactionId: id, collectionId: 'C', reason: 'ECONNRESET' },
    };
    await writeInbound(t, ops, [event]);
    const row = await captured(ops.id, id);
    await inTenant(ops.id, (trx) =>
      trx
        .updateTable('exceptions.exceptions')
        .set({ status: 'RESOLVED', resolved_by: 'user:x', resolved_at: new Date(), resolution: 'fixed' })
        .where('id', '=', row.id)
        .execute(),
    );
    await writeInbound(t, ops, [event]);
    const reopened = await captured(ops.id, id, (r) => r.occurrences === 2);
    expect(reopened).toMatchObject({ status: 'NEW', resolved_by: null, resolved_at: null, resolution: null });
    expect((await auditOf(ops.id, row.id)).map((a) => a.action)).toEqual(['captured', 'reopened']);
  });

  it('captures reasons and ids in emoji whole, cut by characters as their columns count them (never inside a surrogate pair)', async () => {
    // The group's normalized reason is cut at 500 characters: here inside the emoji after 499 x.
    const grouped = txid('emoji-group');
    // 4,000 characters, 7,999 UTF-16 units: cut at 4,000 units, it ended inside an emoji.
    const long = txid('emoji-reason');
    // 150 characters (300 UTF-16 units): within the 200 an id may have, so kept whole.
    const emojiId = '🚚'.repeat(150);
    const events = [
      {
        type: 'DistributionFailed',
        data: { transactionId: grouped, destination: 'dhl', reason: `${'x'.repeat(499)}😀 tail` },
      },
      {
        type: 'DistributionFailed',
        data: { transactionId: long, destination: 'dhl', reason: `a${'😀'.repeat(3999)}` },
      },
      {
        type: 'DistributionFailed',
        data: { transactionId: emojiId, destination: 'dhl', reason: 'refused', customerId: '🙂'.repeat(200) },
      },
    ];
    expect(normalizeReason(events[0]!.data.reason).isWellFormed()).toBe(true);
    for (const event of events) {
      const written = await writeInbound(t, ops, [event]);
      expect(written.statusCode, written.body).toBe(202);
      // Captured in the write's transaction: there once the write is answered.
      const row = await exceptionOf(ops.id, event.data.transactionId);
      expect(row?.reason, event.data.transactionId).toBe(event.data.reason);
    }
    expect((await exceptionOf(ops.id, emojiId))?.customer_id).toBe('🙂'.repeat(200));
    // Its own routes open it: 150 characters are 1,800 once percent-encoded in the path.
    const opened = await send(
      t.app,
      'GET',
      `/api/v1/exceptions/${encodeURIComponent(emojiId)}`,
      ops.operator,
    );
    expect(opened.statusCode, opened.body).toBe(200);
    expect(opened.json()).toMatchObject({ transactionId: emojiId });
    const acknowledged = await send(
      t.app,
      'PUT',
      `/api/v1/exceptions/${encodeURIComponent(emojiId)}/acknowledge`,
      ops.operator,
      {},
    );
    expect(acknowledged.statusCode, acknowledged.body).toBe(200);
  });

  it('refuses a bad inbound event at write time with 422 naming the field', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['OrderShipped', { transactionId: 'x', reason: 'r' }, '/headers/ce-type'],
      ['OrderRejected', { reason: 'r', orderId: 'o' }, '/payload/transactionId'],
      ['OrderRejected', { transactionId: 'x', orderId: 'o' }, '/payload/reason'],
      ['OrderRejected', { transactionId: 'x', reason: 'r' }, '/payload/orderId'],
      ['OrderRejected', { transactionId: 'x', reason: 'r', orderId: 'o', amount: 5 }, '/payload/currency'],
      [
        'OrderRejected',
        { transactionId: 'x', reason: 'r', orderId: 'o', amount: -1, currency: 'EUR' },
        '/payload/amount',
      ],
      [
        'OrderRejected',
        { transactionId: 'order:1:rejected', reason: 'r', orderId: 'o' },
        '/payload/transactionId',
      ],
      ['OrderRejected', { transactionId: 'Summary', reason: 'r', orderId: 'o' }, '/payload/transactionId'],
      ['CollectionRejected', { transactionId: 'x', reason: 'r' }, '/payload/collectionId'],
      ['DistributionFailed', { transactionId: 'x', reason: 'r' }, '/payload/destination'],
      ['ValidationError', { transactionId: 'x', reason: 'r', errors: [] }, '/payload/errors'],
      [
        'ValidationError',
        { transactionId: 'x', reason: 'r', errors: [{ field: 'a' }] },
        '/payload/errors/0/message',
      ],
      [
        'DistributionFailed',
        { transactionId: 'x', reason: 'r', destination: 'd', sql: 'drop' },
        '/payload/sql',
      ],
      [
        'DistributionFailed',
        { transactionId: 'x'.repeat(201), reason: 'r', destination: 'd' },
        '/payload/transactionId',
      ],
      [
        'DistributionFailed',
        { transactionId: 'x', reason: 'r', destination: 'd', occurredAt: 'yesterday' },
        '/payload/occurredAt',
      ],
    ];
    for (const [type, data, pointer] of cases) {
      const answer = await writeInbound(t, ops, [
        { type: 'DistributionFailed', data: { transactionId: 'ok', reason: 'r', destination: 'd' } },
        { type, data },
      ]);
      expect(answer.statusCode, `${type} ${JSON.stringify(data)}: ${answer.body}`).toBe(422);
      expect(answer.headers['content-type']).toContain('application/problem+json');
      const problem = answer.json<{ code: string; errors: { pointer: string }[] }>();
      expect(problem.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
      expect(
        problem.errors.map((e) => e.pointer),
        JSON.stringify(data),
      ).toContain(`/messages/1${pointer}`);
    }
    const single = await send(t.app, 'POST', '/api/v1/wal/write', ops.writer, {
      namespace: 'interface-exceptions',
      payload: { transactionId: 'x', reason: 'r' },
    });
    expect(single.statusCode).toBe(422);
    expect(single.json().errors[0].pointer).toBe('/headers/ce-type');
    // Nothing of a refused batch was written.
    expect(await exceptionOf(ops.id, 'ok')).toBeUndefined();
  });
});

describe("capture of Mercato's own failures", () => {
  it('captures a declined checkout from mercato.order.rejected, and a cancelled order', async () => {
    const shop = await createStore(t, 'capture-shop');
    const item = await product(t, shop, 10);
    const customer = await newCustomer(t, shop);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
    const declined = await placeOrder(t, cart, 'tok_card_declined');
    expect(declined.statusCode, declined.body).toBe(402);
    const { orderId } = declined.json<{ orderId: string }>();
    const row = await captured(shop.id, `order:${orderId}:rejected`);
    expect(row).toMatchObject({
      interface_type: 'ORDER',
      event_type: 'mercato.order.rejected',
      operation: 'checkout',
      category: 'BUSINESS_RULE',
      severity: 'HIGH',
      retryable: false,
      order_id: orderId,
      currency: 'EUR',
      source_ref: { kind: 'order', orderId },
    });
    expect(row.reason).toMatch(/^payment_declined: /);
    expect(row.customer_id).not.toBeNull();
    expect(Number(row.amount)).toBeGreaterThan(2000);

    const paid = await placeOrder(t, await readyCart(t, shop, [{ variant: item, quantity: 1 }], customer));
    expect(paid.statusCode, paid.body).toBe(201);
    const paidId = paid.json<{ id: string }>().id;
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${paidId}/cancel`, shop.staff, {
      reason: 'customer called',
    });
    expect(cancel.statusCode, cancel.body).toBeLessThan(300);
    const cancelled = await captured(shop.id, `order:${paidId}:cancelled`);
    expect(cancelled).toMatchObject({
      category: 'BUSINESS_RULE',
      severity: 'LOW',
      retryable: false,
      status: 'NEW',
    });
    expect(cancelled.reason).toContain('customer called');
    expect(toView(cancelled).sourceRef).toEqual({ kind: 'order', orderId: paidId });
  });
});

describe('exception groups', () => {
  it.runIf(testDatabaseKind() === 'postgres')(
    'counts an exception once in its new group when two reports move it there at once',
    async () => {
      const id = txid('moved');
      const report = (transactionId: string, reason: string): CaptureInput => ({
        transactionId,
        eventType: 'DistributionFailed',
        interfaceType: 'DISTRIBUTION',
        operation: 'distribution.send',
        reason,
        sourceRef: { kind: 'source', interfaceType: 'DISTRIBUTION', externalId: null },
      });
      // What capture writes of the groups (capture.ts): the exception, then its group's credit.
      const capture = async (trx: ExceptionsTrx, input: CaptureInput) => {
        const pending = [...(await prepare(trx, [input])).values()];
        await creditGroups(trx, ops.id, await write(trx, ops.id, pending), pending);
      };
      const [before, after] = [`depot ${id} unreachable`, `depot ${id} refused the manifest`];
      await inTenant(ops.id, (trx) => capture(trx, report(id, before)));
      await inTenant(ops.id, (trx) => capture(trx, report(`${id}-other`, after)));
      // The first report moves it and holds its transaction open; the second comes meanwhile.
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let moved!: () => void;
      const first = new Promise<void>((resolve) => {
        moved = resolve;
      });
      const one = inTenant(ops.id, async (trx) => {
        await capture(trx, report(id, after));
        moved();
        await held;
      });
      await first;
      const two = inTenant(ops.id, (trx) => capture(trx, report(id, after)));
      await new Promise((resolve) => setTimeout(resolve, 200));
      release();
      await Promise.all([one, two]);
      const groups = await inTenant(ops.id, async (trx) => {
        await foldGroupCredits(trx);
        const { rows } = await sql<{ reason: string; exceptions: number; held: number }>`
          select g.normalized_reason as reason, g.exceptions,
            (select count(*)::int from exceptions.exceptions e where e.group_id = g.id) as held
          from exceptions.groups g where g.normalized_reason like ${`depot ${normalizeReason(id)}%`}
          order by g.normalized_reason`.execute(trx);
        return rows;
      });
      expect(groups).toEqual([
        { reason: `depot ${normalizeReason(id)} refused the manifest`, exceptions: 2, held: 2 },
        { reason: `depot ${normalizeReason(id)} unreachable`, exceptions: 0, held: 0 },
      ]);
    },
  );

  it('groups exceptions whose reasons differ only in numbers, newest first, in cursor pages', async () => {
    const tenant = await createOpsTenant(t, 'capture-groups');
    const a = txid('grp');
    const b = txid('grp');
    const c = txid('grp');
    await writeInbound(t, tenant, [
      {
        type: 'DistributionFailed',
        data: { transactionId: a, destination: 'd', reason: 'Parcel 1001 exceeds weight 30 kg' },
      },
      {
        type: 'DistributionFailed',
        data: { transactionId: b, destination: 'd', reason: 'Parcel 7 exceeds weight 31 kg' },
      },
    ]);
    await captured(tenant.id, b);
    await writeInbound(t, tenant, [
      {
        type: 'CollectionRejected',
        data: { transactionId: c, collectionId: 'x', reason: 'slot already booked twice' },
      },
    ]);
    await captured(tenant.id, c);
    const list = await send(t.app, 'GET', '/api/v1/exceptions/groups', tenant.operator);
    expect(list.statusCode, list.body).toBe(200);
    const items = list.json<{
      items: { id: string; exceptions: number; occurrences: number; normalizedReason: string }[];
    }>().items;
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({ interfaceType: 'COLLECTION', exceptions: 1 });
    expect(items[1]).toMatchObject({
      interfaceType: 'DISTRIBUTION',
      exceptions: 2,
      occurrences: 2,
      normalizedReason: 'parcel <n> exceeds weight <n> kg',
    });
    const page = await send(t.app, 'GET', '/api/v1/exceptions/groups?limit=1', tenant.operator);
    const next = await send(
      t.app,
      'GET',
      `/api/v1/exceptions/groups?limit=1&cursor=${page.json().nextCursor}`,
      tenant.operator,
    );
    expect(next.json()).toMatchObject({ items: [{ id: items[1]!.id }], nextCursor: null });
    const filtered = await send(
      t.app,
      'GET',
      '/api/v1/exceptions/groups?interfaceType=COLLECTION',
      tenant.operator,
    );
    expect(filtered.json().items.map((g: { id: string }) => g.id)).toEqual([items[0]!.id]);
    const detail = await send(t.app, 'GET', `/api/v1/exceptions/groups/${items[1]!.id}`, tenant.admin);
    expect(detail.statusCode, detail.body).toBe(200);
    expect(
      detail
        .json()
        .latest.map((e: { transactionId: string }) => e.transactionId)
        .sort(),
    ).toEqual([a, b].sort());

    for (const [url, code] of [
      ['/api/v1/exceptions/groups?severity=URGENT', 400],
      ['/api/v1/exceptions/groups?cursor=nope', 400],
      ['/api/v1/exceptions/groups?limit=1000', 400],
      ['/api/v1/exceptions/groups/not-a-uuid', 400],
    ] as const) {
      const answer = await send(t.app, 'GET', url, tenant.operator);
      expect(answer.statusCode, url).toBe(code);
      expect(answer.json().errors.length, url).toBeGreaterThan(0);
    }
    // Operators only, and one tenant's groups are invisible to another.
    const shopCustomer = await newCustomer(t, { ...tenant, staff: tenant.operator });
    const url = `/api/v1/exceptions/groups/${items[1]!.id}`;
    expect((await send(t.app, 'GET', url, other.operator)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', '/api/v1/exceptions/groups', other.operator)).json().items).toEqual([]);
    expect((await send(t.app, 'GET', url, tenant.staff)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', url, shopCustomer)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', url, tenant.writer)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', url, {})).statusCode).toBe(401);
  });
});
