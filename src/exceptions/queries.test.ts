import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  apiKeyOf,
  asTenant,
  customerOf,
  exceptionUrl,
  type Seeded,
  seedExceptions,
  spreadExceptions,
} from './exceptions-seed-fixtures.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { severityRank } from './tables.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;
let rows: Seeded[];
const base = Date.now() - 60_000;

beforeAll(async () => {
  t = await startExceptionsApp();
  [a, b] = [await createOpsTenant(t, 'exq-a'), await createOpsTenant(t, 'exq-b')];
  rows = await seedExceptions(t, a.id, spreadExceptions(base));
  // Microseconds JavaScript cannot hold: a cursor that rounded them would lose a row of the tie.
  await asTenant(t, a.id, (trx) =>
    sql`update exceptions.exceptions set last_seen = last_seen + interval '250 microseconds'
      where transaction_id in ('TX-1007', 'TX-1008')`.execute(trx),
  );
  await seedExceptions(t, b.id, [
    { transactionId: 'TX-1000', reason: 'the other tenant', severity: 'CRITICAL' },
    { transactionId: 'TX-B-ONLY' },
  ]);
});
afterAll(() => t?.close());

type Item = { transactionId: string; status: string; severity: string };
const get = (url: string, headers: Record<string, string>) => send(t.app, 'GET', url, headers);

/** Every page of a list, following nextCursor. */
async function allPages(url: string, headers = a.operator): Promise<string[]> {
  const ids: string[] = [];
  let next: string | null = null;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const page = await get(next ? `${url}${sep}cursor=${encodeURIComponent(next)}` : url, headers);
    expect(page.statusCode, page.body).toBe(200);
    const body = page.json<{ items: Item[]; nextCursor: string | null }>();
    ids.push(...body.items.map((i) => i.transactionId));
    next = body.nextCursor;
  } while (next);
  return ids;
}

const byKeys =
  (...keys: Array<(r: Seeded) => number | string>) =>
  (x: Seeded, y: Seeded) => {
    for (const key of [...keys, (r: Seeded) => r.id]) {
      const [p, q] = [key(x), key(y)];
      if (p !== q) return p < q ? -1 : 1;
    }
    return 0;
  };
const lastSeen = (r: Seeded) => r.lastSeen.getTime();
const ORDERS: Record<string, (x: Seeded, y: Seeded) => number> = {
  lastSeen: byKeys(lastSeen),
  firstSeen: byKeys((r) => r.firstSeen.getTime()),
  severity: byKeys((r) => severityRank(r.severity), lastSeen),
  occurrences: byKeys((r) => r.occurrences, lastSeen),
};
const ids = (list: Seeded[]) => list.map((r) => r.transactionId);

describe('GET /exceptions', () => {
  it('lists newest first by default, paging every row once through cursors', async () => {
    const expected = ids([...rows].sort(ORDERS.lastSeen!).reverse());
    expect(await allPages('/api/v1/exceptions?limit=4')).toEqual(expected);
    const first = await get('/api/v1/exceptions', a.operator);
    expect(first.json().items).toHaveLength(20);
    expect(first.headers['cache-control']).toBe('private, no-store');
    expect(first.json().items[0]).toMatchObject({
      transactionId: 'TX-1000',
      customerId: 'cust-a',
      groupId: rows[0]!.groupId,
    });
  });

  it.each(['lastSeen', 'firstSeen', 'severity', 'occurrences'])(
    'sorts by %s both ways, page after page',
    async (key) => {
      const ascending = ids([...rows].sort(ORDERS[key]!));
      expect(await allPages(`/api/v1/exceptions?sort=${key}&limit=5`)).toEqual(ascending);
      expect(await allPages(`/api/v1/exceptions?sort=-${key}&limit=3`)).toEqual([...ascending].reverse());
    },
  );

  it('filters by every field, each list repeated or comma-separated', async () => {
    const expect_ = async (query: string, keep: (r: Seeded) => boolean) => {
      const wanted = ids(rows.filter(keep).sort(ORDERS.lastSeen!).reverse());
      expect(await allPages(`/api/v1/exceptions?limit=100&${query}`), query).toEqual(wanted);
    };
    const newOrAck = (r: Seeded) => r.status === 'NEW' || r.status === 'ACKNOWLEDGED';
    await expect_('status=NEW&status=ACKNOWLEDGED', newOrAck);
    await expect_('status=NEW,ACKNOWLEDGED', newOrAck);
    await expect_('severity=CRITICAL', (r) => r.severity === 'CRITICAL');
    await expect_('category=TIMEOUT,NETWORK_ERROR', (r) => ['TIMEOUT', 'NETWORK_ERROR'].includes(r.category));
    await expect_('interfaceType=COLLECTION', (r) => r.interfaceType === 'COLLECTION');
    await expect_('customerId=cust-a', (r) => r.customerId === 'cust-a');
    await expect_('locationCode=LOC-1', (r) => r.locationCode === 'LOC-1');
    await expect_('retryable=false', (r) => !r.retryable);
    await expect_(`groupId=${rows[3]!.groupId}`, (r) => r.groupId === rows[3]!.groupId);
    await expect_(
      'severity=HIGH&interfaceType=ORDER',
      (r) => r.severity === 'HIGH' && r.interfaceType === 'ORDER',
    );
    const from = new Date(base - 10 * 60_000).toISOString();
    const to = new Date(base - 3 * 60_000).toISOString();
    await expect_(
      `from=${from}&to=${to}`,
      (r) => lastSeen(r) >= Date.parse(from) && lastSeen(r) < Date.parse(to),
    );
  });

  it('pages a filtered, sorted list as well', async () => {
    const keep = rows.filter((r) => r.retryable);
    expect(await allPages('/api/v1/exceptions?retryable=true&sort=-severity&limit=2')).toEqual(
      ids(keep.sort(ORDERS.severity!).reverse()),
    );
  });

  it('answers 400 naming the field for bad filters, sorts, limits and cursors', async () => {
    const bad = async (query: string, code: string, pointer: string) => {
      const answer = await get(`/api/v1/exceptions?${query}`, a.operator);
      expect(answer.statusCode, query).toBe(400);
      expect(answer.headers['content-type']).toContain('application/problem+json');
      expect(answer.json().code, query).toBe(code);
      expect(
        answer.json().errors?.map((e: { pointer: string }) => e.pointer),
        query,
      ).toContain(pointer);
    };
    await bad('status=BOGUS', 'VALIDATION_FAILED', '/status');
    await bad('status=NEW,', 'VALIDATION_FAILED', '/status');
    await bad('severity=LOW&severity=URGENT', 'VALIDATION_FAILED', '/severity');
    await bad('sort=reason', 'VALIDATION_FAILED', '/sort');
    await bad('limit=0', 'VALIDATION_FAILED', '/limit');
    await bad('limit=101', 'VALIDATION_FAILED', '/limit');
    await bad('from=yesterday', 'VALIDATION_FAILED', '/from');
    await bad(
      `from=${new Date(base).toISOString()}&to=${new Date(base - 1).toISOString()}`,
      'VALIDATION_FAILED',
      '/to',
    );
    await bad(`customerId=${'x'.repeat(201)}`, 'VALIDATION_FAILED', '/customerId');
    await bad('tenantId=someone-else', 'VALIDATION_FAILED', '/tenantId');
    await bad('cursor=not-a-cursor!', 'INVALID_CURSOR', '/cursor');
    const page = await get('/api/v1/exceptions?limit=2', a.operator);
    const cursor = encodeURIComponent(page.json().nextCursor);
    await bad(`sort=severity&cursor=${cursor}`, 'INVALID_CURSOR', '/cursor');
    const forged = Buffer.from(
      JSON.stringify({ s: '-lastSeen', k: ["2026-01-01'; drop"], i: uuidv7() }),
    ).toString('base64url');
    await bad(`cursor=${forged}`, 'INVALID_CURSOR', '/cursor');
  });

  it('answers 400 INVALID_CURSOR for a forged cursor whose number is past the integer range, never a 500', async () => {
    for (const sort of ['-occurrences', 'occurrences', '-severity', 'severity']) {
      const forged = Buffer.from(
        JSON.stringify({ s: sort, k: [3_000_000_000, new Date(base).toISOString()], i: uuidv7() }),
      ).toString('base64url');
      const answer = await get(`/api/v1/exceptions?sort=${sort}&cursor=${forged}`, a.operator);
      expect(answer.statusCode, `${sort} ${answer.body}`).toBe(400);
      expect(answer.json().code).toBe('INVALID_CURSOR');
    }
  });

  it('answers 400 INVALID_CURSOR for a forged cursor whose time PostgreSQL refuses (a leap second with a fraction), never a 500', async () => {
    const time = '2016-12-31T23:59:60.5Z';
    const i = uuidv7();
    const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const url of [
      `/api/v1/exceptions?cursor=${cursor({ s: '-lastSeen', k: [time], i })}`,
      `/api/v1/exceptions?sort=severity&cursor=${cursor({ s: 'severity', k: [1, time], i })}`,
      `/api/v1/exceptions/search?q=failure&cursor=${cursor({ t: time, i })}`,
      `/api/v1/exceptions/search?q=failure&sort=relevance&cursor=${cursor({ r: 0.5, t: time, i })}`,
      `/api/v1/exceptions/groups?cursor=${cursor({ t: time, i })}`,
    ]) {
      const answer = await get(url, a.operator);
      expect(answer.statusCode, `${url} ${answer.body}`).toBe(400);
      expect(answer.json().code).toBe('INVALID_CURSOR');
    }
  });

  it("shows a tenant its own exceptions only, whoever's transaction ids collide", async () => {
    expect(await allPages('/api/v1/exceptions?limit=100', b.operator)).toEqual(['TX-1000', 'TX-B-ONLY']);
    const theirs = await get('/api/v1/exceptions?customerId=cust-a', b.operator);
    expect(theirs.json().items).toEqual([]);
  });

  it('is for operators and admins, or a key with exceptions:read', async () => {
    expect((await get('/api/v1/exceptions', a.admin)).statusCode).toBe(200);
    expect((await get('/api/v1/exceptions', await apiKeyOf(t, a, ['exceptions:read']))).statusCode).toBe(200);
    for (const [who, headers, status] of [
      ['staff', a.staff, 403],
      ['customer', await customerOf(t, a), 403],
      ['a wal:write key', a.writer, 403],
      ['anonymous', {}, 401],
    ] as const) {
      for (const url of ['/api/v1/exceptions', '/api/v1/exceptions/summary', exceptionUrl('TX-1000')]) {
        expect((await get(url, headers)).statusCode, `${who} ${url}`).toBe(status);
      }
    }
  });
});

describe('GET /exceptions/{transactionId}', () => {
  it('shows an exception whose id holds any character, with its payload (no source: as it arrived), retries and audit', async () => {
    const id = 'ORD/2024 #7?x=1&y=%41 ünï';
    const [row] = await seedExceptions(t, a.id, [
      {
        transactionId: id,
        payload: { lines: [{ sku: 'SKU-1', qty: 2 }], note: 'hello' },
        lastSeen: new Date(base - 3_600_000),
      },
    ]);
    await asTenant(t, a.id, async (trx) => {
      await trx
        .insertInto('exceptions.retry_attempts')
        .values(
          [1, 2].map((attempt) => ({
            id: uuidv7(),
            tenant_id: a.id,
            exception_id: row!.id,
            attempt,
            action: 'source' as const,
            status: attempt === 1 ? ('failed' as const) : ('pending' as const),
            outcome: attempt === 1 ? 'HTTP 503' : null,
            requested_by: 'user:someone',
          })),
        )
        .execute();
      await trx
        .insertInto('exceptions.audit')
        .values({
          id: uuidv7(),
          tenant_id: a.id,
          exception_id: row!.id,
          action: 'captured',
          actor: 'system:capture',
          at: new Date(base - 3_600_000),
        })
        .execute();
    });
    const ack = await send(t.app, 'PUT', exceptionUrl(id, '/acknowledge'), a.operator, { note: 'looking' });
    expect(ack.statusCode, ack.body).toBe(200);

    const detail = await get(exceptionUrl(id), a.operator);
    expect(detail.statusCode, detail.body).toBe(200);
    const body = detail.json();
    expect(body).toMatchObject({
      transactionId: id,
      status: 'ACKNOWLEDGED',
      payload: { lines: [{ sku: 'SKU-1', qty: 2 }], note: 'hello' },
      payloadFrom: 'event',
    });
    expect(body.retries.map((r: { attempt: number; status: string }) => [r.attempt, r.status])).toEqual([
      [2, 'pending'],
      [1, 'failed'],
    ]);
    expect(body.audit.map((e: { action: string }) => e.action)).toEqual(['captured', 'acknowledged']);
    expect(body.audit[1]).toMatchObject({ note: 'looking', details: { from: 'NEW', to: 'ACKNOWLEDGED' } });
    expect(detail.headers['cache-control']).toBe('private, no-store');
  });

  it("answers 404 for a missing id and for another tenant's, and each tenant its own of a shared id", async () => {
    expect((await get(exceptionUrl('TX-NOPE'), a.operator)).statusCode).toBe(404);
    const other = await get(exceptionUrl('TX-1001'), b.operator);
    expect([other.statusCode, other.json().code]).toEqual([404, 'NOT_FOUND']);
    expect((await get(exceptionUrl('TX-B-ONLY'), a.operator)).statusCode).toBe(404);
    const mine = await get(exceptionUrl('TX-1000'), b.operator);
    expect(mine.json()).toMatchObject({
      transactionId: 'TX-1000',
      reason: 'the other tenant',
      severity: 'CRITICAL',
    });
  });
});
