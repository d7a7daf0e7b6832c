import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../platform/context.ts';
import { withSystem } from '../platform/db/index.ts';
import { testRedisUrl } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { createPayloadCache } from './payload-cache.ts';
import { type FakeSource, insertException, putSource, startSource } from './retry-test-fixtures.ts';

let t: ExceptionsTestApp;
let shop: OpsTenant;
let source: FakeSource;

beforeAll(async () => {
  source = await startSource();
  t = await startExceptionsApp({ MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' });
  shop = await createOpsTenant(t, 'payload-shop');
  await putSource(t, shop, 'ORDER', { baseUrl: source.url, credentials: { token: 'erp-token-1' } });
  await putSource(t, shop, 'COLLECTION', {
    baseUrl: source.url,
    credentials: { username: 'mercato', password: 'pa55 word' },
  });
});
afterAll(async () => {
  await t?.close();
  await source?.close();
});

const hooks = () => t.exceptions.hooks;
const requestsFor = (id: string) =>
  source.requests.filter((r) => r.url.endsWith(`/payloads/${encodeURIComponent(id)}`));

describe('payload retrieval', () => {
  it('fetches the payload from the source, then serves it from the cache, and fetches again once the exception changes', async () => {
    const externalId = 'ERP/42 ü';
    source.payloads.set(externalId, JSON.stringify({ order: 'ERP/42', lines: [{ sku: 'A', qty: 2 }] }));
    const row = await insertException(t, shop.id, {
      transactionId: 'tx-payload-1',
      externalId,
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId },
    });

    const first = await hooks().loadPayload(shop.id, row);
    expect(first).toEqual({ payload: { order: 'ERP/42', lines: [{ sku: 'A', qty: 2 }] }, from: 'source' });
    const [request] = requestsFor(externalId);
    expect(request).toMatchObject({ method: 'GET', url: `/erp/payloads/${encodeURIComponent(externalId)}` });
    expect(request!.headers.authorization).toBe('Bearer erp-token-1');

    const second = await hooks().loadPayload(shop.id, row);
    expect(second).toEqual({ payload: first.payload, from: 'cache' });
    expect(requestsFor(externalId)).toHaveLength(1);

    source.payloads.set(externalId, JSON.stringify({ order: 'ERP/42', lines: [] }));
    await hooks().invalidatePayload(shop.id, 'tx-payload-1');
    const third = await hooks().loadPayload(shop.id, row);
    expect(third).toEqual({ payload: { order: 'ERP/42', lines: [] }, from: 'source' });
    expect(requestsFor(externalId)).toHaveLength(2);
  });

  it('asks by transaction id without an external id, signing in with HTTP Basic', async () => {
    source.payloads.set('tx-basic', '{"n":1}');
    const row = await insertException(t, shop.id, {
      transactionId: 'tx-basic',
      interfaceType: 'COLLECTION',
      sourceRef: { kind: 'source', interfaceType: 'COLLECTION', externalId: null },
    });
    expect(await hooks().loadPayload(shop.id, row)).toEqual({ payload: { n: 1 }, from: 'source' });
    const basic = `Basic ${Buffer.from('mercato:pa55 word').toString('base64')}`;
    expect(requestsFor('tx-basic')[0]!.headers.authorization).toBe(basic);
  });

  it('never asks another path than /payloads/{id}: an id of . or .. (a URL would climb with it) is not sent', async () => {
    for (const externalId of ['.', '..']) {
      const transactionId = `tx-dots-${externalId.length}`;
      const row = await insertException(t, shop.id, {
        transactionId,
        externalId,
        payload: { carried: transactionId },
        sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId },
      });
      const before = source.requests.length;
      const answer = await hooks().loadPayload(shop.id, row);
      // {baseUrl}/payloads/.. is {baseUrl}/ once a URL resolves it: the credentials went there.
      expect(source.requests.slice(before).map((r) => r.url)).toEqual([]);
      expect(answer).toEqual({
        payload: { carried: transactionId },
        from: 'event',
        error: `the id ${externalId} cannot name a payload in a URL path`,
      });
    }
  });

  it("answers the event's payload with the reason when the source has none, answers too much, or not JSON", async () => {
    const cases: Array<[string, string | undefined, RegExp]> = [
      ['missing', undefined, /^HTTP 404/],
      ['huge', JSON.stringify({ blob: 'x'.repeat(1024 * 1024) }), /more than 1048576 bytes/],
      ['html', '<html>oops</html>', /not JSON/],
    ];
    for (const [id, body, error] of cases) {
      if (body !== undefined) source.payloads.set(id, body);
      const row = await insertException(t, shop.id, {
        transactionId: `tx-${id}`,
        externalId: id,
        payload: { carried: id },
        sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: id },
      });
      const answer = await hooks().loadPayload(shop.id, row);
      expect(answer).toMatchObject({ payload: { carried: id }, from: 'event' });
      expect(answer.error).toMatch(error);
      // An answer is not a failure of the source: it is asked once, not retried.
      expect(requestsFor(id)).toHaveLength(1);
    }
  });

  it('answers the event payload with why when no source is configured or the order is unknown', async () => {
    const noSource = await insertException(t, shop.id, {
      transactionId: 'tx-no-source',
      interfaceType: 'VALIDATION',
      payload: { carried: true },
      sourceRef: { kind: 'source', interfaceType: 'VALIDATION', externalId: 'v-1' },
    });
    expect(await hooks().loadPayload(shop.id, noSource)).toEqual({
      payload: { carried: true },
      from: 'event',
      error: 'no source is configured for VALIDATION',
    });
    const order = await insertException(t, shop.id, {
      transactionId: 'tx-order',
      sourceRef: { kind: 'order', orderId: uuidv7() },
    });
    const answer = await hooks().loadPayload(shop.id, order);
    expect(answer).toMatchObject({ from: 'event', payload: { from: 'event' } });
    expect(answer.error).toMatch(/not found/);
  });

  it("gives a dead letter's message from the WAL", async () => {
    const messageId = `dead-${uuidv7()}`;
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`
        insert into wal.messages (id, tenant_id, namespace, message_id, payload, headers, request_hash, backend,
          state, due_at, attempts, max_attempts, last_error, dead_at)
        values (${uuidv7()}, ${shop.id}, 'order-events', ${messageId}, ${JSON.stringify({ orderId: 'o-9' })}::jsonb,
          '{}'::jsonb, 'h', 'postgres', 'dead', now(), 1, 1, 'HTTP 500', now())`.execute(trx),
    );
    const row = await insertException(t, shop.id, {
      transactionId: messageId,
      sourceRef: { kind: 'wal-dead-letter', namespace: 'order-events', messageId },
    });
    expect(await hooks().loadPayload(shop.id, row)).toEqual({
      payload: { orderId: 'o-9' },
      from: 'dead-letter',
    });
    const gone = await insertException(t, shop.id, {
      transactionId: 'tx-gone',
      sourceRef: { kind: 'wal-dead-letter', namespace: 'order-events', messageId: 'never-written' },
    });
    expect(await hooks().loadPayload(shop.id, gone)).toMatchObject({
      from: 'event',
      error: expect.any(String),
    });
  });
});

describe.runIf(testRedisUrl())('the payload cache in Redis', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(testRedisUrl()!);
  });
  afterAll(() => redis?.quit());

  it("keeps payloads under the operator's prefix and the tenant, expiring, and drops them", async () => {
    const prefix = `test-${uuidv7()}:`;
    const ctx = { redis, config: { redisPrefix: prefix }, logger: t.ctx.logger } as unknown as AppContext;
    const cache = createPayloadCache(ctx, 60);
    const tenantA = uuidv7();
    await cache.set(tenantA, 'tx {1}', { url: 'http://erp/payloads/1', payload: { a: 1 } });
    expect(await cache.get(tenantA, 'tx {1}')).toEqual({ url: 'http://erp/payloads/1', payload: { a: 1 } });
    expect(await cache.get(uuidv7(), 'tx {1}')).toBeUndefined();
    const keys = await redis.keys(`${prefix}*`);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.startsWith(`${prefix}exceptions:${tenantA}:payload:`)).toBe(true);
    expect(keys[0]).not.toContain('{');
    const ttl = await redis.ttl(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await cache.drop(tenantA, 'tx {1}');
    expect(await cache.get(tenantA, 'tx {1}')).toBeUndefined();
  });
});
