import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { addUser, bearer } from '../../identity/users/user-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import type { AppContext } from '../../platform/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createGroupCommitter, type GroupCommitter } from '../backends/postgres/group-commit.ts';
import type { WalDeps } from '../deps.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import type { WalTables } from '../tables.ts';
import { writeRoutes } from './index.ts';
import { addNamespace, countMessages, walDb } from './write-test-fixtures.ts';

const WRITE = '/api/v1/wal/write';
const BATCH = '/api/v1/wal/write/batch';
const ORDER_SCHEMA = {
  type: 'object',
  required: ['orderId'],
  properties: { orderId: { type: 'string' }, total: { type: 'integer', minimum: 0 } },
};

type Receipt = {
  messageId: string;
  status: string;
  durabilityStatus: string;
  backend: string;
  timestamp: string;
  estimatedProcessingTime: string;
};
type Problem = { code: string; status: number; errors?: { in: string; pointer: string; message: string }[] };

function walModule(ctx: AppContext, committer: { current?: GroupCommitter }) {
  const db = ctx.db.kysely as Kysely<WalTables>;
  const deps: WalDeps = { ctx, db, namespaces: createNamespaceCache(ctx, db), streams: new Map() };
  committer.current = createGroupCommitter(db);
  const routes = writeRoutes(deps, { committer: committer.current });
  return {
    name: 'wal-write-test',
    routes: async (app: FastifyInstance) => {
      await app.register(routes);
    },
    start: () => deps.namespaces.start(),
    stop: async () => {
      await committer.current?.close();
      await deps.namespaces.stop();
    },
  };
}

const problem = (response: LightMyRequestResponse, status: number, code: string) => {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
  const body = response.json<Problem>();
  expect(body.code).toBe(code);
  return body;
};

describe('WAL write API', () => {
  let t: TestApp;
  const committer: { current?: GroupCommitter } = {};
  let shop: TestTenant;
  let rival: TestTenant;
  let admin: Record<string, string>;
  let rivalAdmin: Record<string, string>;
  let ordersKey: Record<string, string>;
  let readOnlyKey: Record<string, string>;

  const apiKey = async (permissions: string[], namespaces: string[]) => {
    const response = await post(
      t.app,
      '/api/v1/api-keys',
      { name: 'producer', permissions, namespaces },
      admin,
    );
    expect(response.statusCode, response.body).toBe(201);
    return { 'x-api-key': response.json<{ key: string }>().key };
  };

  beforeAll(async () => {
    t = await startTestApp({}, { modules: async (ctx) => [walModule(ctx, committer)] });
    shop = await createTestTenant(t, 'write-a');
    rival = await createTestTenant(t, 'write-b');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    rivalAdmin = {
      authorization: `Bearer ${(await login(t.app, rival.slug, rival.adminEmail)).accessToken}`,
    };
    await addNamespace(t, shop.id, 'orders', {
      payload_schema: JSON.stringify(ORDER_SCHEMA),
      max_delay_ms: 3_600_000,
      targets: JSON.stringify([
        { type: 'internal', name: 'ledger', handler: 'orders.ledger', enabled: true },
      ]),
    });
    await addNamespace(t, shop.id, 'muted', {
      targets: JSON.stringify([
        { type: 'internal', name: 'ledger', handler: 'orders.ledger', enabled: false },
      ]),
    });
    await addNamespace(t, shop.id, 'payments');
    await addNamespace(t, shop.id, 'closed', { enabled: false });
    await addNamespace(t, shop.id, 'tiny', { max_payload_bytes: 100 });
    await addNamespace(t, shop.id, 'throttled', { rate_limit_per_second: 2 });
    await addNamespace(t, shop.id, 'streams', { backend: 'redis-streams' });
    await addNamespace(t, shop.id, 'jetstream', { backend: 'nats-jetstream', fallback_backend: 'postgres' });
    await addNamespace(t, rival.id, 'orders');
    ordersKey = await apiKey(['wal:write'], ['orders', 'throttled']);
    readOnlyKey = await apiKey(['orders:read'], ['orders']);
  });
  afterAll(() => t.close());

  it('accepts a message with 202 once it is stored, pending and due now', async () => {
    const response = await post(
      t.app,
      WRITE,
      { namespace: 'orders', payload: { orderId: 'o-1', total: 5 } },
      ordersKey,
    );
    expect(response.statusCode, response.body).toBe(202);
    const receipt = response.json<Receipt>();
    expect(receipt).toMatchObject({ status: 'accepted', durabilityStatus: 'persisted', backend: 'postgres' });
    expect(receipt.estimatedProcessingTime).toBe(receipt.timestamp);
    const row = await withTenant(walDb(t), shop.id, (trx) =>
      trx
        .selectFrom('wal.messages')
        .selectAll()
        .where('message_id', '=', receipt.messageId)
        .executeTakeFirstOrThrow(),
    );
    expect(row).toMatchObject({
      id: receipt.messageId,
      state: 'pending',
      namespace: 'orders',
      max_attempts: 10,
    });
    expect(row.payload).toEqual({ orderId: 'o-1', total: 5 });
  });

  it('stores a message delivered at once when its namespace has no enabled target to deliver it to', async () => {
    const stateOf = async (namespace: string, lifecycle?: { delay: number }) => {
      const response = await post(t.app, WRITE, { namespace, payload: { n: 1 }, lifecycle }, admin);
      expect(response.statusCode, response.body).toBe(202);
      const { messageId } = response.json<Receipt>();
      return withTenant(walDb(t), shop.id, (trx) =>
        trx
          .selectFrom('wal.messages')
          .select(['state', 'attempts', 'delivered_at', 'created_at'])
          .where('message_id', '=', messageId)
          .executeTakeFirstOrThrow(),
      );
    };
    for (const namespace of ['payments', 'muted']) {
      const row = await stateOf(namespace);
      expect(row).toMatchObject({ state: 'delivered', attempts: 0 });
      expect(row.delivered_at).toEqual(row.created_at);
    }
    // A delayed message waits for its time even so: a target added meanwhile receives it.
    expect(await stateOf('payments', { delay: 60_000 })).toMatchObject({
      state: 'scheduled',
      delivered_at: null,
    });
  });

  it('schedules a delayed message and keeps key, headers and maxAttempts', async () => {
    const response = await post(
      t.app,
      WRITE,
      {
        namespace: 'orders',
        payload: { orderId: 'o-2' },
        lifecycle: { delay: 60_000, maxAttempts: 3 },
        key: 'customer-7',
        headers: { 'x-source': 'pos' },
        messageId: 'scheduled-1',
      },
      admin,
    );
    expect(response.statusCode, response.body).toBe(202);
    const receipt = response.json<Receipt>();
    expect(receipt).toMatchObject({
      messageId: 'scheduled-1',
      status: 'scheduled',
      durabilityStatus: 'scheduled',
    });
    expect(Date.parse(receipt.estimatedProcessingTime) - Date.parse(receipt.timestamp)).toBe(60_000);
    const row = await withTenant(walDb(t), shop.id, (trx) =>
      trx
        .selectFrom('wal.messages')
        .selectAll()
        .where('message_id', '=', 'scheduled-1')
        .executeTakeFirstOrThrow(),
    );
    expect(row).toMatchObject({ state: 'scheduled', max_attempts: 3, ordering_key: 'customer-7' });
    expect(row.headers).toEqual({ 'x-source': 'pos' });
  });

  it('answers 401 without a credential, even for a bad body', async () => {
    problem(await post(t.app, WRITE, { namespace: 'orders', payload: {} }), 401, 'UNAUTHENTICATED');
    problem(await post(t.app, WRITE, { nonsense: true }), 401, 'UNAUTHENTICATED');
    problem(await post(t.app, BATCH, { namespace: 'orders', messages: [] }), 401, 'UNAUTHENTICATED');
    problem(
      await post(t.app, WRITE, { namespace: 'orders', payload: {} }, { 'x-api-key': 'mk_nope' }),
      401,
      'INVALID_TOKEN',
    );
  });

  it('answers 403 to keys and users that may not write the namespace', async () => {
    const payload = { orderId: 'o' };
    problem(await post(t.app, WRITE, { namespace: 'payments', payload }, ordersKey), 403, 'FORBIDDEN');
    problem(await post(t.app, WRITE, { namespace: 'orders', payload }, readOnlyKey), 403, 'FORBIDDEN');
    await addUser(t, shop.id, 'staff@write-a.test', 'staff');
    const staff = await bearer(t, shop.slug, 'staff@write-a.test');
    problem(await post(t.app, WRITE, { namespace: 'orders', payload }, staff), 403, 'FORBIDDEN');
    // Scoped by name: a key never learns whether a namespace it may not use exists.
    problem(await post(t.app, WRITE, { namespace: 'ghost', payload }, ordersKey), 403, 'FORBIDDEN');
  });

  it('answers 404 for an unknown namespace and 409 for a disabled one', async () => {
    problem(await post(t.app, WRITE, { namespace: 'ghost', payload: {} }, admin), 404, 'NOT_FOUND');
    // Another tenant's namespace does not exist for this tenant.
    problem(await post(t.app, WRITE, { namespace: 'tiny', payload: {} }, rivalAdmin), 404, 'NOT_FOUND');
    problem(await post(t.app, WRITE, { namespace: 'closed', payload: {} }, admin), 409, 'NAMESPACE_DISABLED');
  });

  it('answers 413 for a payload over the namespace limit', async () => {
    const before = await countMessages(t, shop.id, 'tiny');
    const body = problem(
      await post(t.app, WRITE, { namespace: 'tiny', payload: { text: 'x'.repeat(200) } }, admin),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expect(body.errors?.[0]?.pointer).toBe('/payload');
    expect(await countMessages(t, shop.id, 'tiny')).toBe(before);
    expect((await post(t.app, WRITE, { namespace: 'tiny', payload: { text: 'ok' } }, admin)).statusCode).toBe(
      202,
    );
  });

  it('answers 422 with a JSON pointer per schema error', async () => {
    const body = problem(
      await post(t.app, WRITE, { namespace: 'orders', payload: { total: 'lots' } }, ordersKey),
      422,
      'PAYLOAD_SCHEMA_MISMATCH',
    );
    expect(body.errors?.map((e) => e.pointer).sort()).toEqual(['/payload/orderId', '/payload/total']);
    expect(body.errors?.every((e) => e.in === 'body' && e.message.length > 0)).toBe(true);
  });

  it('answers 422 DELAY_TOO_LONG over the namespace maximum delay', async () => {
    const body = problem(
      await post(
        t.app,
        WRITE,
        { namespace: 'orders', payload: { orderId: 'o' }, lifecycle: { delay: 3_600_001 } },
        admin,
      ),
      422,
      'DELAY_TOO_LONG',
    );
    expect(body.errors?.[0]?.pointer).toBe('/lifecycle/delay');
  });

  it('answers 400 for a malformed body', async () => {
    problem(await post(t.app, WRITE, { namespace: 'orders' }, admin), 400, 'VALIDATION_FAILED');
    problem(
      await post(t.app, WRITE, { namespace: 'orders', payload: {}, lifecycle: { delay: -1 } }, admin),
      400,
      'VALIDATION_FAILED',
    );
  });

  it('answers 429 with Retry-After over the namespace rate limit per key', async () => {
    const responses = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        post(t.app, WRITE, { namespace: 'throttled', payload: { i } }, ordersKey),
      ),
    );
    const limited = responses.filter((r) => r.statusCode === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(responses.filter((r) => r.statusCode === 202).length).toBeLessThanOrEqual(4);
    problem(limited[0]!, 429, 'RATE_LIMITED');
    expect(Number(limited[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // A batch bigger than the limit can never fit in a window.
    const messages = Array.from({ length: 3 }, (_, i) => ({ payload: { i } }));
    problem(await post(t.app, BATCH, { namespace: 'throttled', messages }, ordersKey), 429, 'RATE_LIMITED');
  });

  it('answers 503 with Retry-After when the backend is down and there is no fallback; else uses the fallback', async () => {
    const down = await post(t.app, WRITE, { namespace: 'streams', payload: {} }, admin);
    problem(down, 503, 'BACKEND_UNAVAILABLE');
    expect(Number(down.headers['retry-after'])).toBeGreaterThan(0);
    expect(await countMessages(t, shop.id, 'streams')).toBe(0);
    const fallback = await post(t.app, WRITE, { namespace: 'jetstream', payload: {} }, admin);
    expect(fallback.statusCode, fallback.body).toBe(202);
    expect(fallback.json<Receipt>().backend).toBe('postgres');
  });

  it('replays the first receipt for the same messageId and body, and refuses another body with 409', async () => {
    const body = { namespace: 'orders', payload: { orderId: 'o-9' }, messageId: 'order-9-created' };
    const first = await post(t.app, WRITE, body, ordersKey);
    expect(first.statusCode).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await post(t.app, WRITE, { ...body, payload: { orderId: 'o-9' } }, admin);
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const changed = problem(
      await post(t.app, WRITE, { ...body, payload: { orderId: 'o-10' } }, ordersKey),
      409,
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect(changed.errors?.[0]?.pointer).toBe('/messageId');
    const count = await withTenant(walDb(t), shop.id, (trx) =>
      trx.selectFrom('wal.messages').select('payload').where('message_id', '=', 'order-9-created').execute(),
    );
    expect(count).toEqual([{ payload: { orderId: 'o-9' } }]);
  });

  it('treats Idempotency-Key as an alias of messageId', async () => {
    const body = { namespace: 'orders', payload: { orderId: 'k-1' } };
    const headers = { ...ordersKey, 'idempotency-key': 'checkout-42' };
    const first = await post(t.app, WRITE, body, headers);
    expect(first.statusCode).toBe(202);
    expect(first.json<Receipt>().messageId).toBe('checkout-42');
    const again = await post(t.app, WRITE, body, headers);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    problem(
      await post(t.app, WRITE, { ...body, payload: { orderId: 'k-2' } }, headers),
      409,
      'IDEMPOTENCY_KEY_REUSED',
    );
    problem(await post(t.app, WRITE, { ...body, messageId: 'other' }, headers), 400, 'VALIDATION_FAILED');
    const count = await withTenant(walDb(t), shop.id, (trx) =>
      trx.selectFrom('wal.messages').select('id').where('message_id', '=', 'checkout-42').execute(),
    );
    expect(count).toHaveLength(1);
  });

  describe('batch', () => {
    const orders = (n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) => ({
        payload: { orderId: `${prefix}-${i}` },
        messageId: `${prefix}-${i}`,
      }));

    it('writes up to 1,000 messages at once', async () => {
      const before = await countMessages(t, shop.id, 'orders');
      const response = await post(
        t.app,
        BATCH,
        { namespace: 'orders', messages: orders(1000, 'bulk') },
        ordersKey,
      );
      expect(response.statusCode, response.body).toBe(202);
      const body = response.json<{ namespace: string; messages: Receipt[] }>();
      expect(body.messages).toHaveLength(1000);
      expect(body.messages[999]!.messageId).toBe('bulk-999');
      expect(await countMessages(t, shop.id, 'orders')).toBe(before + 1000);
      const tooMany = await post(
        t.app,
        BATCH,
        { namespace: 'orders', messages: orders(1001, 'over') },
        ordersKey,
      );
      problem(tooMany, 400, 'VALIDATION_FAILED');
    });

    it('writes nothing when one message of 50 is bad, and names its index', async () => {
      const before = await countMessages(t, shop.id, 'orders');
      const messages = orders(50, 'half');
      messages[3] = { payload: { total: 1 } as never, messageId: 'half-3' };
      const schema = problem(
        await post(t.app, BATCH, { namespace: 'orders', messages }, ordersKey),
        422,
        'PAYLOAD_SCHEMA_MISMATCH',
      );
      expect(schema.errors?.map((e) => e.pointer)).toEqual(['/messages/3/payload/orderId']);
      const delayed = orders(50, 'late').map((m, i) =>
        i === 7 ? { ...m, lifecycle: { delay: 4_000_000 } } : m,
      );
      const delay = problem(
        await post(t.app, BATCH, { namespace: 'orders', messages: delayed }, ordersKey),
        422,
        'DELAY_TOO_LONG',
      );
      expect(delay.errors?.[0]?.pointer).toBe('/messages/7/lifecycle/delay');
      const big = orders(50, 'big');
      big[11] = { payload: { orderId: 'x'.repeat(300_000) }, messageId: 'big-11' };
      const tooLarge = problem(
        await post(t.app, BATCH, { namespace: 'orders', messages: big }, ordersKey),
        413,
        'PAYLOAD_TOO_LARGE',
      );
      expect(tooLarge.errors?.[0]?.pointer).toBe('/messages/11/payload');
      // A messageId already written with another body fails the whole batch, at its index.
      const reused = orders(50, 'reuse');
      reused[20] = { payload: { orderId: 'different' }, messageId: 'order-9-created' };
      const conflict = problem(
        await post(t.app, BATCH, { namespace: 'orders', messages: reused }, ordersKey),
        409,
        'IDEMPOTENCY_KEY_REUSED',
      );
      expect(conflict.errors?.map((e) => e.pointer)).toEqual(['/messages/20/messageId']);
      const repeated = orders(5, 'twice');
      repeated[4] = { ...repeated[4]!, messageId: 'twice-0' };
      problem(
        await post(t.app, BATCH, { namespace: 'orders', messages: repeated }, ordersKey),
        400,
        'VALIDATION_FAILED',
      );
      expect(await countMessages(t, shop.id, 'orders')).toBe(before);
    });

    it('replays a batch under the same Idempotency-Key', async () => {
      const messages = Array.from({ length: 10 }, (_, i) => ({ payload: { orderId: `ik-${i}` } }));
      const headers = { ...ordersKey, 'idempotency-key': 'import-2026-11-22' };
      const first = await post(t.app, BATCH, { namespace: 'orders', messages }, headers);
      expect(first.statusCode, first.body).toBe(202);
      expect(first.json<{ messages: Receipt[] }>().messages[3]!.messageId).toBe('import-2026-11-22/3');
      const again = await post(t.app, BATCH, { namespace: 'orders', messages }, headers);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.json()).toEqual(first.json());
      const changed = messages.map((m, i) => (i === 9 ? { payload: { orderId: 'changed' } } : m));
      problem(
        await post(t.app, BATCH, { namespace: 'orders', messages: changed }, headers),
        409,
        'IDEMPOTENCY_KEY_REUSED',
      );
    });
  });

  it('lands 1,000 concurrent HTTP writes exactly once, sharing commits', async () => {
    const before = await countMessages(t, shop.id, 'payments');
    const flushesBefore = committer.current!.stats().flushes;
    const responses = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        post(t.app, WRITE, { namespace: 'payments', payload: { i }, messageId: `pay-${i % 500}` }, admin),
      ),
    );
    // 500 ids each written twice with different bodies: one of each pair wins, the other is a 409.
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 202)).toHaveLength(500);
    expect(statuses.filter((s) => s === 409)).toHaveLength(500);
    expect(await countMessages(t, shop.id, 'payments')).toBe(before + 500);
    const unique = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        post(t.app, WRITE, { namespace: 'payments', payload: { n: i }, messageId: `once-${i}` }, admin),
      ),
    );
    expect(unique.every((r) => r.statusCode === 202)).toBe(true);
    expect(await countMessages(t, shop.id, 'payments')).toBe(before + 1500);
    expect(committer.current!.stats().flushes - flushesBefore).toBeLessThan(1000);
  });

  it('documents its routes in a valid OpenAPI document', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/v1/wal/write',
        '/api/v1/wal/write/batch',
        '/api/v1/wal/messages/{messageId}',
      ]),
    );
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? []).toEqual([]);
  });

  describe('GET /wal/messages/{messageId}', () => {
    const get = (id: string, headers: Record<string, string>, query = '') =>
      t.app.inject({ url: `/api/v1/wal/messages/${encodeURIComponent(id)}${query}`, headers });

    it('shows the state, due time and every attempt', async () => {
      const written = await post(
        t.app,
        WRITE,
        { namespace: 'orders', payload: { orderId: 'g-1' }, messageId: 'seen-1' },
        admin,
      );
      expect(written.statusCode).toBe(202);
      const pk = await withTenant(walDb(t), shop.id, async (trx) => {
        const { id } = await trx
          .selectFrom('wal.messages')
          .select('id')
          .where('message_id', '=', 'seen-1')
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('wal.messages')
          .set({ state: 'retrying', attempts: 1, last_error: 'HTTP 500' })
          .where('id', '=', id)
          .execute();
        const at = new Date();
        await trx
          .insertInto('wal.attempts')
          .values({
            message_pk: id,
            tenant_id: shop.id,
            attempt: 1,
            target: 'billing',
            started_at: at,
            finished_at: at,
            outcome: 'failed',
            status_code: 500,
            error: 'HTTP 500',
          })
          .execute();
        return id;
      });
      const response = await get('seen-1', ordersKey);
      expect(response.statusCode, response.body).toBe(200);
      const view = response.json<Record<string, unknown>>();
      expect(view).toMatchObject({
        id: pk,
        messageId: 'seen-1',
        namespace: 'orders',
        state: 'retrying',
        attempts: 1,
        lastError: 'HTTP 500',
        payload: { orderId: 'g-1' },
        history: [{ attempt: 1, target: 'billing', outcome: 'failed', statusCode: 500, error: 'HTTP 500' }],
      });
      expect(typeof view['dueAt']).toBe('string');
    });

    it('is 404 for another tenant and a namespace the key may not read, 403 for a key without wal:write, 409 when ambiguous', async () => {
      problem(await get('seen-1', rivalAdmin), 404, 'NOT_FOUND');
      problem(await get('nothing-here', admin), 404, 'NOT_FOUND');
      await post(t.app, WRITE, { namespace: 'payments', payload: {}, messageId: 'twin' }, admin);
      await post(t.app, WRITE, { namespace: 'orders', payload: { orderId: 't' }, messageId: 'twin' }, admin);
      const ambiguous = problem(await get('twin', admin), 409, 'CONFLICT');
      expect((ambiguous as unknown as { namespaces: string[] }).namespaces).toEqual(['orders', 'payments']);
      expect((await get('twin', admin, '?namespace=payments')).json()).toMatchObject({
        namespace: 'payments',
      });
      // The orders key sees only its own namespace's twin.
      expect((await get('twin', ordersKey)).json()).toMatchObject({ namespace: 'orders' });
      // Like a missing message: a 403 would say the id exists in a namespace the key may not read.
      problem(await get('twin', ordersKey, '?namespace=payments'), 404, 'NOT_FOUND');
      problem(await get('twin', readOnlyKey), 403, 'FORBIDDEN');
      problem(await t.app.inject({ url: '/api/v1/wal/messages/twin' }), 401, 'UNAUTHENTICATED');
    });
  });
});
