import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

type Receipt = {
  messageId: string;
  status: string;
  backend: string;
  estimatedProcessingTime: string;
  timestamp: string;
};
type Message = {
  messageId: string;
  state: string;
  attempts: number;
  lastError: string | null;
  history: { target: string; outcome: string; statusCode: number | null; error: string | null }[];
};

// One behaviour, three engines: each backend this run can reach (PostgreSQL or PGlite always;
// Redis and NATS when scripts/test.ts found them).
const BACKENDS: { backend: string; env: Record<string, string> }[] = [
  { backend: 'postgres', env: {} },
  ...(testRedisUrl() ? [{ backend: 'redis-streams', env: { REDIS_URL: testRedisUrl()! } }] : []),
  ...(testNatsUrl() ? [{ backend: 'nats-jetstream', env: { NATS_URL: testNatsUrl()! } }] : []),
];

// The WAL end to end through its HTTP API: namespaces, writes, delivery to a real webhook
// receiver on loopback, retries, dead letters, requeue, ordering, signatures, 410 (SSRF: ssrf.test.ts).
describe.each(BACKENDS)('WAL behaviour on $backend, end to end', ({ backend, env }) => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  const receivers: Receiver[] = [];

  /** A fresh receiver and a namespace whose one http target points at it. */
  async function namespaceWithReceiver(name: string, options: { maxAttempts?: number } = {}) {
    const receiver = await startReceiver();
    receivers.push(receiver);
    const secret = newSecret();
    const response = await post(
      t.app,
      '/api/v1/wal/namespaces',
      {
        name,
        backend,
        retry: {
          strategy: 'fixed',
          baseDelayMs: 50,
          maxDelayMs: 50,
          maxAttempts: options.maxAttempts ?? 3,
          jitter: 0,
        },
        targets: [{ name: 'hook', type: 'http', url: receiver.url, secret, timeoutMs: 2000, enabled: true }],
      },
      admin,
    );
    return { receiver, secret, response };
  }

  async function ready(name: string) {
    const made = await namespaceWithReceiver(name);
    expect(made.response.statusCode, made.response.body).toBe(201);
    return made;
  }

  async function write(body: Record<string, unknown>, headers = admin) {
    return post(t.app, '/api/v1/wal/write', body, headers);
  }

  async function accepted(body: Record<string, unknown>, headers = admin): Promise<Receipt> {
    const response = await write(body, headers);
    expect(response.statusCode, response.body).toBe(202);
    return response.json<Receipt>();
  }

  async function message(namespace: string, messageId: string): Promise<Message> {
    const response = await t.app.inject({
      url: `/api/v1/wal/messages/${encodeURIComponent(messageId)}?namespace=${namespace}`,
      headers: admin,
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json<Message>();
  }

  const inState = (namespace: string, messageId: string, state: string) =>
    until(async () => {
      const m = await message(namespace, messageId);
      return m.state === state ? m : undefined;
    }, `${messageId} ${state}`);

  beforeAll(async () => {
    // The operator opens the loopback receivers to HTTP targets (src/wal/e2e/ssrf.test.ts: closed).
    t = await startTestApp(
      { ...env, MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    shop = await createTestTenant(t, 'wal-e2e');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t.close();
    for (const receiver of receivers) await receiver.close();
  });

  it('writes with an API key (wal:write, namespace orders) and delivers the payload as a CloudEvent', async () => {
    const { receiver } = await ready('orders');
    const created = await post(
      t.app,
      '/api/v1/api-keys',
      { name: 'producer', permissions: ['wal:write'], namespaces: ['orders'] },
      admin,
    );
    expect(created.statusCode, created.body).toBe(201);
    const key = { 'x-api-key': created.json<{ key: string }>().key };
    const receipt = await accepted({ namespace: 'orders', payload: { orderId: 'o-1', total: 12 } }, key);
    expect(receipt.status).toBe('accepted');
    expect(receipt.backend).toBe(backend);
    const got = await until(
      () => receiver.received.find((r) => r.event.id === receipt.messageId),
      'delivery',
    );
    expect(got.headers['content-type']).toBe('application/cloudevents+json');
    expect(got.event).toMatchObject({
      specversion: '1.0',
      id: receipt.messageId,
      source: '/mercato/wal/orders',
      data: { orderId: 'o-1', total: 12 },
      tenantid: shop.id,
    });
    expect((await inState('orders', receipt.messageId, 'delivered')).attempts).toBeGreaterThanOrEqual(1);
    // the key is scoped to orders: another namespace is refused
    await ready('not-orders');
    expect((await write({ namespace: 'not-orders', payload: {} }, key)).statusCode).toBe(403);
  });

  it('signs every delivery per Standard Webhooks (verified with the standardwebhooks package)', async () => {
    const { receiver, secret } = await ready('signed');
    const receipt = await accepted({ namespace: 'signed', payload: { hello: 'wörld', n: [1, 2, 3] } });
    const got = await until(
      () => receiver.received.find((r) => r.event.id === receipt.messageId),
      'delivery',
    );
    const headers = {
      'webhook-id': String(got.headers['webhook-id']),
      'webhook-timestamp': String(got.headers['webhook-timestamp']),
      'webhook-signature': String(got.headers['webhook-signature']),
    };
    expect(new Webhook(secret).verify(got.body, headers)).toMatchObject({ id: receipt.messageId });
    expect(() => new Webhook(newSecret()).verify(got.body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(`${got.body} `, headers)).toThrow();
  });

  it('holds a delayed message until its due time', async () => {
    const { receiver } = await ready('delayed');
    const receipt = await accepted({ namespace: 'delayed', payload: { n: 1 }, lifecycle: { delay: 800 } });
    expect(receipt.status).toBe('scheduled');
    const due = Date.parse(receipt.estimatedProcessingTime);
    expect(due - Date.parse(receipt.timestamp)).toBe(800);
    const got = await until(
      () => receiver.received.find((r) => r.event.id === receipt.messageId),
      'delivery',
    );
    // the due time comes from the database clock; same host, so allow a few ms of rounding
    expect(got.at).toBeGreaterThanOrEqual(due - 5);
  });

  it('retries a failing endpoint and delivers once it recovers', async () => {
    const { receiver } = await ready('retried');
    receiver.failNext(2, 500);
    const receipt = await accepted({ namespace: 'retried', payload: { n: 1 } });
    const delivered = await inState('retried', receipt.messageId, 'delivered');
    expect(delivered.attempts).toBe(3);
    expect(delivered.history.map((h) => [h.outcome, h.statusCode])).toEqual([
      ['failed', 500],
      ['failed', 500],
      ['delivered', 200],
    ]);
    expect(receiver.received.filter((r) => r.event.id === receipt.messageId)).toHaveLength(1);
  });

  it('moves a message to the dead letters after its attempts, and a requeue delivers it', async () => {
    const { receiver } = await ready('doomed');
    receiver.failNext(1_000_000, 500);
    const receipt = await accepted({ namespace: 'doomed', payload: { n: 1 } });
    const dead = await inState('doomed', receipt.messageId, 'dead');
    expect(dead.attempts).toBe(3);
    expect(dead.history.filter((h) => h.outcome === 'failed' || h.outcome === 'dead')).toHaveLength(3);
    expect(dead.lastError).toMatch(/500/);

    const list = await t.app.inject({ url: '/api/v1/wal/namespaces/doomed/dlq', headers: admin });
    expect(list.statusCode, list.body).toBe(200);
    const items = list.json<{ items: { messageId: string; lastError: string | null; attempts: number }[] }>()
      .items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ messageId: receipt.messageId, attempts: 3 });
    expect(items[0]?.lastError).toMatch(/hook.*500|500/);
    expect(receiver.received).toHaveLength(0);

    receiver.failNext(0, 500);
    const requeue = await post(
      t.app,
      `/api/v1/wal/namespaces/doomed/dlq/${encodeURIComponent(receipt.messageId)}/requeue`,
      {},
      admin,
    );
    expect(requeue.statusCode, requeue.body).toBe(202);
    expect(requeue.json()).toEqual({ requeued: 1 });
    await inState('doomed', receipt.messageId, 'delivered');
    expect(receiver.received.map((r) => r.event.id)).toEqual([receipt.messageId]);
    const after = await t.app.inject({ url: '/api/v1/wal/namespaces/doomed/dlq', headers: admin });
    expect(after.json<{ items: unknown[] }>().items).toHaveLength(0);
  });

  it('answers the first receipt to a repeated messageId, delivers once, and 409s another body', async () => {
    const { receiver } = await ready('idem');
    const body = { namespace: 'idem', messageId: 'order-42-paid', payload: { orderId: 42 } };
    const first = await write(body);
    expect(first.statusCode, first.body).toBe(202);
    const again = await write(body);
    expect(again.statusCode, again.body).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    await inState('idem', 'order-42-paid', 'delivered');
    const third = await write(body);
    expect(third.json()).toEqual(first.json());
    const other = await write({ ...body, payload: { orderId: 43 } });
    expect(other.statusCode, other.body).toBe(409);
    expect(other.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    // a later message shows the queue moved on; the repeated one arrived exactly once
    const marker = await accepted({ namespace: 'idem', payload: { marker: true } });
    await inState('idem', marker.messageId, 'delivered');
    expect(receiver.received.filter((r) => r.event.id === 'order-42-paid')).toHaveLength(1);
    expect(receiver.received.find((r) => r.event.id === 'order-42-paid')?.event.data).toEqual({
      orderId: 42,
    });
  });

  it('delivers the messages of one key in the order they were written', async () => {
    const { receiver } = await ready('ordered');
    // a couple of failures on the way must not reorder anything
    receiver.failNext(2, 500);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push((await accepted({ namespace: 'ordered', key: 'cart-7', payload: { seq: i } })).messageId);
    }
    await until(() => ids.every((id) => receiver.ids().has(id)), 'all 30 delivered');
    const seen: number[] = [];
    for (const r of receiver.received) {
      const seq = (r.event.data as { seq: number }).seq;
      if (!seen.includes(seq)) seen.push(seq);
    }
    expect(seen).toEqual([...Array(30).keys()]);
  });

  it('takes a 410 Gone as the end of that target: the message is not retried', async () => {
    const { receiver } = await ready('gone');
    receiver.failNext(1, 410);
    const receipt = await accepted({ namespace: 'gone', payload: { n: 1 } });
    const done = await until(async () => {
      const m = await message('gone', receipt.messageId);
      return m.state === 'delivered' || m.state === 'dead' ? m : undefined;
    }, 'message settled');
    // today: the target is marked done for this message (outcome skipped) and the message completes
    expect(done.state).toBe('delivered');
    expect(done.history.map((h) => [h.target, h.outcome, h.statusCode])).toEqual([['hook', 'skipped', 410]]);
    expect(receiver.received).toHaveLength(0);
  });

  it('disables a target that answered 410 in its namespace, and sends it nothing more', async () => {
    const { receiver } = await ready('gone-for-good');
    receiver.failNext(1, 410);
    const receipt = await accepted({ namespace: 'gone-for-good', payload: { n: 1 } });
    await inState('gone-for-good', receipt.messageId, 'delivered');
    const ns = await until(async () => {
      const response = await t.app.inject({ url: '/api/v1/wal/namespaces/gone-for-good', headers: admin });
      const view = response.json<{ targets: { name: string; enabled: boolean }[] }>();
      return view.targets[0]?.enabled === false ? view : undefined;
    }, 'target disabled');
    expect(ns.targets).toMatchObject([{ name: 'hook', enabled: false }]);
    const next = await accepted({ namespace: 'gone-for-good', payload: { n: 2 } });
    await inState('gone-for-good', next.messageId, 'delivered');
    expect(receiver.received).toHaveLength(0);
  });
});
