import { type Kysely, sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import type { DomainEvent, ReceivedEvent } from '../../platform/events/index.ts';
import { startTestApp, type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { newSecret, type Receiver, startReceiver, until } from '../e2e/receiver.ts';
import { createWal, type WalModule } from '../index.ts';

// Each events backend this run can reach: postgres always, redis-streams and nats-jetstream when
// Redis and NATS are there (MERCATO_TEST_REDIS_URL, MERCATO_TEST_NATS_URL).
const stream = (backend: string, env: Record<string, string>) => [
  { backend, env: { ...env, MERCATO_EVENTS_BACKEND: backend } },
];
const BACKENDS: { backend: string; env: Record<string, string> }[] = [
  { backend: 'postgres', env: {} },
  ...(testRedisUrl() ? stream('redis-streams', { REDIS_URL: testRedisUrl()! }) : []),
  ...(testNatsUrl() ? stream('nats-jetstream', { NATS_URL: testNatsUrl()! }) : []),
];

// Domain events end to end: a module publishes in its transaction (wal.events.publish), tenants
// receive them as signed CloudEvents on their webhooks, modules through subscribers (exactly once).
describe.each(BACKENDS)('domain events on $backend', ({ backend, env }) => {
  let t: TestApp;
  let wal: WalModule;
  let receiver: Receiver;
  let shop: TestTenant;
  let admin: Record<string, string>;
  const created: ReceivedEvent[] = [];
  const everything: ReceivedEvent[] = [];
  /** What the set-oriented subscriber received: each call's subjects, and any one-by-one call. */
  const batches: string[][] = [];
  const oneByOne: string[] = [];
  /** What the subscriber with `skips` handled. */
  const unskipped: string[] = [];
  let secret: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    const port = new URL(receiver.url).port;
    t = await startTestApp(
      { ...env, MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${port}` },
      {
        modules: async (ctx) => {
          wal = await createWal(ctx);
          wal.events.subscribe({
            name: 'test.product-created',
            topic: 'product-events',
            types: ['mercato.product.created'],
            handle: async (_trx, event) => {
              created.push(event);
            },
          });
          wal.events.subscribe({
            name: 'test.everything',
            topic: 'product-events',
            types: ['*'],
            handle: async (_trx, event) => {
              everything.push(event);
            },
          });
          wal.events.subscribe({
            name: 'test.batched',
            topic: 'inventory-events',
            types: ['mercato.inventory.batched'],
            handle: async (_trx, event) => {
              oneByOne.push(event.subject);
            },
            handleMany: async (_trx, events) => {
              batches.push(events.map((e) => e.subject));
            },
          });
          wal.events.subscribe({
            name: 'test.skipping',
            topic: 'inventory-events',
            types: ['mercato.inventory.counted'],
            skips: (event) => {
              if (event.hints?.['broken']) throw new Error('a bug in the predicate');
              return event.hints?.['unchanged'] === true;
            },
            handle: async (_trx, event) => {
              unskipped.push(event.subject);
            },
          });
          return [wal];
        },
      },
    );
    shop = await createTestTenant(t, `events-${backend}`);
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    secret = newSecret();
    const hook = {
      name: 'shop-hook',
      type: 'http',
      url: receiver.url,
      secret,
      timeoutMs: 2000,
      types: ['mercato.product.*'],
    };
    const put = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/product-events',
      payload: { targets: [hook], retry: { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50 } },
      headers: admin,
    });
    expect(put.statusCode, put.body).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const db = () => t.ctx.db.kysely as Kysely<unknown>;
  const publish = (events: DomainEvent[], meta = {}) =>
    withTenant(db(), shop.id, (trx) => wal.events.publish(trx, shop.id, 'product-events', events, meta));

  it('creates the system namespaces on MERCATO_EVENTS_BACKEND, with the subscribers as read-only internal targets', async () => {
    const response = await t.app.inject({ url: '/api/v1/wal/namespaces/product-events', headers: admin });
    expect(response.json()).toMatchObject({ system: true, backend });
    const targets = response.json().targets as Record<string, unknown>[];
    expect(targets.map((target) => target['name'])).toEqual([
      'test.product-created',
      'test.everything',
      'shop-hook',
    ]);
    expect(targets[0]).toMatchObject({ type: 'internal', system: true, types: ['mercato.product.created'] });
    // Sending them back unchanged is accepted; changing or dropping-and-renaming one is not.
    const echoed = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/product-events',
      payload: { targets: targets.map(({ circuit: _c, ...target }) => target) },
      headers: admin,
    });
    expect(echoed.statusCode, echoed.body).toBe(200);
    const changed = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/product-events',
      payload: { targets: [{ ...targets[0], types: ['*'] }] },
      headers: admin,
    });
    expect(changed.statusCode).toBe(409);
    expect(changed.json().code).toBe('SYSTEM_NAMESPACE');
    const taken = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/product-events',
      payload: { targets: [{ name: 'test.everything', type: 'internal', handler: 'mine' }] },
      headers: admin,
    });
    expect(taken.statusCode).toBe(409);
  });

  it('leaves no message when the publishing transaction rolls back', async () => {
    await expect(
      withTenant(db(), shop.id, async (trx) => {
        await wal.events.publish(trx, shop.id, 'product-events', [
          { type: 'mercato.product.created', subject: 'rolled-back', data: { id: 'rolled-back' } },
        ]);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    const rows = await withSystem(db(), (trx) =>
      sql`select 1 from wal.messages where tenant_id = ${shop.id} and namespace = 'product-events'`.execute(
        trx,
      ),
    );
    expect(rows.rows).toHaveLength(0);
    await publish([
      { type: 'mercato.product.created', subject: 'after-rollback', data: { id: 'after-rollback' } },
    ]);
    await until(() => everything.find((e) => e.subject === 'after-rollback'), 'the committed event');
    expect(everything.find((e) => e.subject === 'rolled-back')).toBeUndefined();
    expect(receiver.received.find((r) => r.event['subject'] === 'rolled-back')).toBeUndefined();
  });

  it("writes a transaction's events of every publish and topic in one insert at its commit, in publish order", async () => {
    const subjects = ['batched-1', 'batched-2', 'batched-3'];
    const stored = (trx: Parameters<Parameters<typeof withSystem>[1]>[0]) =>
      sql<{ message_id: string; namespace: string }>`
        select message_id, namespace from wal.messages
        where tenant_id = ${shop.id} and ordering_key = any(${subjects}) order by id`.execute(trx);
    const inside = await withTenant(db(), shop.id, async (trx) => {
      await wal.events.publish(trx, shop.id, 'product-events', [
        { type: 'mercato.product.created', subject: 'batched-1', data: { id: 'batched-1' } },
      ]);
      await wal.events.publish(trx, shop.id, 'inventory-events', [
        { type: 'mercato.inventory.adjusted', subject: 'batched-2', data: { id: 'batched-2' } },
      ]);
      await wal.events.publish(trx, shop.id, 'product-events', [
        { type: 'mercato.product.updated', subject: 'batched-3', data: { id: 'batched-3' } },
      ]);
      // Checked at once, written at the commit: nothing yet in this transaction.
      return (await stored(trx as never)).rows.length;
    });
    expect(inside).toBe(0);
    if (backend === 'postgres') {
      // (A stream backend's relay moves them out of wal.messages as soon as they commit.)
      const rows = (await withSystem(db(), (trx) => stored(trx))).rows;
      expect(rows.map((r) => r.namespace)).toEqual(['product-events', 'inventory-events', 'product-events']);
    }
    await until(
      () => everything.filter((e) => subjects.includes(e.subject)).length === 2,
      'both product events',
    );
    const seen = everything.filter((e) => subjects.includes(e.subject)).map((e) => e.subject);
    // Ordered per subject only: two subjects may arrive either way round.
    expect(seen.sort()).toEqual(['batched-1', 'batched-3']);
  });

  it('delivers a published event to an HTTP target as a signed CloudEvent with subject and extensions, filtered by types', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await publish(
      [
        { type: 'mercato.category.created', subject: 'cat-1', data: { id: 'cat-1' } },
        { type: 'mercato.product.updated', subject: 'prod-1', data: { id: 'prod-1', title: 'Tee' } },
      ],
      { correlationId: 'req-42', causationId: 'cmd-7', traceparent },
    );
    const got = await until(() => receiver.received.find((r) => r.event['subject'] === 'prod-1'), 'webhook');
    expect(got.event).toMatchObject({
      specversion: '1.0',
      type: 'mercato.product.updated',
      source: '/mercato/product-events',
      subject: 'prod-1',
      datacontenttype: 'application/json',
      data: { id: 'prod-1', title: 'Tee' },
      tenantid: shop.id,
      correlationid: 'req-42',
      causationid: 'cmd-7',
      traceparent,
    });
    expect(got.event.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
    const headers = {
      'webhook-id': String(got.headers['webhook-id']),
      'webhook-timestamp': String(got.headers['webhook-timestamp']),
      'webhook-signature': String(got.headers['webhook-signature']),
    };
    expect(new Webhook(secret).verify(got.body, headers)).toMatchObject({ id: got.event.id });
    // The category event reached the '*' subscriber, never the mercato.product.* webhook.
    await until(() => everything.find((e) => e.subject === 'cat-1'), 'the category event');
    await until(() => everything.find((e) => e.subject === 'prod-1'), 'the product event');
    expect(receiver.received.filter((r) => String(r.event.type).startsWith('mercato.category.'))).toEqual([]);
  });

  it("delivers Mercato's own internal messages (a timer) to the modules' subscribers only, never to the tenant's webhook", async () => {
    // One subject: a message of a key waits for the one before it, so the webhook's receipt of
    // the second means the first, whose type its filter takes, was settled for it before.
    await publish([
      { type: 'mercato.product.reminder', subject: 'own-timer', data: { n: 1 }, internal: true },
      { type: 'mercato.product.updated', subject: 'own-timer', data: { n: 2 } },
    ]);
    await until(() => receiver.received.find((r) => r.event['subject'] === 'own-timer'), 'the domain event');
    await until(
      () => everything.filter((e) => e.subject === 'own-timer').length === 2,
      'both, to the subscriber',
    );
    expect(everything.filter((e) => e.subject === 'own-timer').map((e) => e.type)).toEqual([
      'mercato.product.reminder',
      'mercato.product.updated',
    ]);
    const hooked = receiver.received.filter((r) => r.event['subject'] === 'own-timer');
    expect(hooked.map((r) => r.event['type'])).toEqual(['mercato.product.updated']);
  });

  it('gives an internal subscriber exactly the types it asked for, as ReceivedEvents', async () => {
    await publish([
      { type: 'mercato.product.created', subject: 'sub-1', data: { id: 'sub-1' } },
      { type: 'mercato.product.deleted', subject: 'sub-1', data: { id: 'sub-1' } },
    ]);
    await until(() => everything.filter((e) => e.subject === 'sub-1').length === 2, 'both events');
    const mine = created.filter((e) => e.subject === 'sub-1');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      type: 'mercato.product.created',
      source: '/mercato/product-events',
      data: { id: 'sub-1' },
      tenantid: shop.id,
    });
  });

  it('gives a set-oriented subscriber (handleMany) the events of a delivery batch in one call, each exactly once', async () => {
    const subjects = Array.from({ length: 20 }, (_, i) => `batched-${i}`);
    await withTenant(db(), shop.id, (trx) =>
      wal.events.publish(
        trx,
        shop.id,
        'inventory-events',
        subjects.map((subject) => ({ type: 'mercato.inventory.batched', subject, data: { subject } })),
      ),
    );
    await until(() => batches.flat().length >= subjects.length, 'the batched events');
    expect(batches.flat().sort()).toEqual([...subjects].sort());
    expect(oneByOne).toEqual([]);
    // The postgres consumer leases the 20 together, so they share a transaction and a call.
    if (backend === 'postgres') expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThan(1);
  });

  it('delivers an event with delayMs no sooner than that after its commit (a durable timer)', async () => {
    const committed = Date.now();
    await publish([
      { type: 'mercato.product.created', subject: 'later', data: { id: 'later' }, delayMs: 700 },
      { type: 'mercato.product.created', subject: 'now', data: { id: 'now' } },
    ]);
    let arrived = 0;
    await until(() => {
      arrived = Date.now();
      return created.find((e) => e.subject === 'later');
    }, 'the delayed event');
    expect(arrived - committed).toBeGreaterThanOrEqual(700);
    await until(() => created.find((e) => e.subject === 'now'), 'the undelayed event');
  });

  it.runIf(backend === 'postgres')(
    'runs a subscriber once per event even when the delivery is repeated',
    async () => {
      await publish([{ type: 'mercato.product.created', subject: 'once', data: { id: 'once' } }]);
      await until(async () => {
        const { rows } = await withSystem(db(), (trx) =>
          sql<{
            state: string;
          }>`select state from wal.messages where tenant_id = ${shop.id} and ordering_key = 'once'`.execute(
            trx,
          ),
        );
        return rows[0]?.state === 'delivered';
      }, 'delivered');
      expect(created.filter((e) => e.subject === 'once')).toHaveLength(1);
      // As if a lease had expired after the handlers ran: every target gets the message again.
      await withSystem(db(), (trx) =>
        sql`update wal.messages set state = 'pending', targets_done = '{}', due_at = now()
          where tenant_id = ${shop.id} and ordering_key = 'once'`.execute(trx),
      );
      await until(
        () => receiver.received.filter((r) => r.event['subject'] === 'once').length === 2,
        'the webhook again',
      );
      const { rows } = await withSystem(db(), (trx) =>
        sql`select consumer from wal.inbox where tenant_id = ${shop.id} order by consumer`.execute(trx),
      );
      expect(rows.length).toBeGreaterThan(0);
      expect(created.filter((e) => e.subject === 'once')).toHaveLength(1);
      expect(everything.filter((e) => e.subject === 'once')).toHaveLength(1);
    },
  );

  it.runIf(backend === 'postgres')(
    'stores an event no target of its namespace filters in as delivered at once, and delivers the others',
    async () => {
      const hook = { name: 'paid', type: 'http', url: receiver.url, secret, types: ['mercato.order.paid'] };
      const put = await t.app.inject({
        method: 'PUT',
        url: '/api/v1/wal/namespaces/order-events',
        payload: { targets: [hook] },
        headers: admin,
      });
      expect(put.statusCode, put.body).toBe(200);
      await withTenant(db(), shop.id, (trx) =>
        wal.events.publish(trx, shop.id, 'order-events', [
          { type: 'mercato.order.created', subject: 'order-1', data: { id: 'order-1' } },
          { type: 'mercato.order.paid', subject: 'order-2', data: { id: 'order-2' } },
        ]),
      );
      const { rows } = await withSystem(db(), (trx) =>
        sql<{ ordering_key: string; state: string; attempts: number }>`
          select ordering_key, state, attempts from wal.messages
          where tenant_id = ${shop.id} and namespace = 'order-events' order by ordering_key`.execute(trx),
      );
      expect(rows[0]).toMatchObject({ ordering_key: 'order-1', state: 'delivered', attempts: 0 });
      await until(() => receiver.received.find((r) => r.event['subject'] === 'order-2'), 'the paid order');
      expect(receiver.received.find((r) => r.event['subject'] === 'order-1')).toBeUndefined();
    },
  );

  it('stores an event its only subscriber skips as delivered at once on postgres, never storing the hints', async () => {
    await withTenant(db(), shop.id, (trx) =>
      wal.events.publish(trx, shop.id, 'inventory-events', [
        {
          type: 'mercato.inventory.counted',
          subject: 'count-same',
          data: { n: 1 },
          hints: { unchanged: true },
        },
        {
          type: 'mercato.inventory.counted',
          subject: 'count-new',
          data: { n: 2 },
          hints: { unchanged: false },
        },
        // A predicate that throws cannot fail the publisher: the event is delivered.
        { type: 'mercato.inventory.counted', subject: 'count-odd', data: { n: 3 }, hints: { broken: true } },
      ]),
    );
    await until(
      () => unskipped.includes('count-new') && unskipped.includes('count-odd'),
      'the events not skipped',
    );
    const { rows } = await withSystem(db(), (trx) =>
      sql<{ ordering_key: string; state: string; attempts: number; payload: unknown; headers: unknown }>`
        select ordering_key, state, attempts, payload, headers from wal.messages
        where tenant_id = ${shop.id} and ordering_key like 'count-%' order by ordering_key`.execute(trx),
    );
    expect(JSON.stringify(rows)).not.toContain('unchanged');
    if (backend !== 'postgres') return; // a stream backend delivers it as usual: handle copes
    expect(rows.find((r) => r.ordering_key === 'count-same')).toMatchObject({
      state: 'delivered',
      attempts: 0,
    });
    expect(unskipped).not.toContain('count-same');
  });

  it("refuses a tenant's internal target calling a subscriber's handler (it would act on forged events)", async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/v1/wal/namespaces',
      payload: {
        name: 'forgery',
        targets: [{ name: 'sneak', type: 'internal', handler: 'events:test.everything' }],
      },
      headers: admin,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([expect.objectContaining({ pointer: '/targets/0/handler' })]);
  });

  it.runIf(backend === 'postgres')(
    'records no attempt for a target whose types leave the event out',
    async () => {
      await publish([{ type: 'mercato.product.deleted', subject: 'passed-by', data: { id: 'passed-by' } }]);
      const targets = async () => {
        const { rows } = await withSystem(db(), (trx) =>
          sql<{ state: string; target: string | null }>`
            select m.state, a.target from wal.messages m left join wal.attempts a on a.message_pk = m.id
            where m.tenant_id = ${shop.id} and m.ordering_key = 'passed-by' order by a.target`.execute(trx),
        );
        return rows;
      };
      await until(async () => (await targets())[0]?.state === 'delivered', 'delivered');
      // test.product-created takes mercato.product.created only.
      expect((await targets()).map((r) => r.target)).toEqual(['shop-hook', 'test.everything']);
    },
  );

  it.runIf(backend === 'postgres')(
    "never hands a subscriber a tenant's message, even through a target stored before such targets were refused",
    async () => {
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/v1/wal/namespaces',
        payload: { name: 'old-forgery' },
        headers: admin,
      });
      expect(created.statusCode, created.body).toBe(201);
      const sneak = [{ name: 'sneak', type: 'internal', enabled: true, handler: 'events:test.everything' }];
      await withSystem(db(), (trx) =>
        sql`update wal.namespaces set targets = ${JSON.stringify(sneak)}::jsonb
          where tenant_id = ${shop.id} and name = 'old-forgery'`.execute(trx),
      );
      const write = await t.app.inject({
        method: 'POST',
        url: '/api/v1/wal/write',
        payload: {
          namespace: 'old-forgery',
          key: 'forged',
          headers: { 'ce-type': 'mercato.product.created' },
          payload: { id: 'x' },
        },
        headers: admin,
      });
      expect(write.statusCode, write.body).toBeLessThan(300);
      await until(async () => {
        const { rows } = await withSystem(db(), (trx) =>
          sql<{ state: string }>`select state from wal.messages
            where tenant_id = ${shop.id} and namespace = 'old-forgery'`.execute(trx),
        );
        return rows[0]?.state === 'delivered';
      }, 'the forged message handled');
      expect(everything.filter((e) => e.subject === 'forged')).toEqual([]);
    },
  );

  it('refuses bad types patterns with 400 naming each field', async () => {
    const target = (types: unknown) => ({
      name: 'bad',
      type: 'http',
      url: receiver.url,
      secret: newSecret(),
      types,
    });
    for (const [types, pointer] of [
      [[], '/targets/0/types'],
      ['mercato.*', '/targets/0/types'],
      [Array.from({ length: 21 }, (_, i) => `t${i}`), '/targets/0/types'],
      [['mercato.*.created'], '/targets/0/types/0'],
      [['ok.type', 'mercato.product*'], '/targets/0/types/1'],
      [['*.created'], '/targets/0/types/0'],
      [['x'.repeat(201)], '/targets/0/types/0'],
      [['has space'], '/targets/0/types/0'],
      [[7], '/targets/0/types/0'],
    ] as const) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/api/v1/wal/namespaces',
        payload: { name: 'filtered', targets: [target(types)] },
        headers: admin,
      });
      expect(response.statusCode, JSON.stringify(types)).toBe(400);
      expect(response.json().errors.map((e: { pointer: string }) => e.pointer)).toEqual([pointer]);
    }
  });
});
