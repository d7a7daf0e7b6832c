import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import {
  deliverInternalOnly,
  eventually,
  insertMessage,
  insertNamespace,
  loadNamespaceWithSql,
  messageRow,
} from '../delivery/delivery-test-fixtures.ts';
import { createDeliveryEngine } from '../delivery/index.ts';
import type { WalTables } from '../tables.ts';
import { dlqRoutes } from './index.ts';

let t: TestApp;
let db: Kysely<WalTables>;
let shop: TestTenant;
let other: TestTenant;
let auth: Record<string, string>;
let otherAuth: Record<string, string>;
let nsCounter = 0;

beforeAll(async () => {
  t = await startTestApp(
    {},
    { modules: async (ctx) => [{ name: 'wal-dlq', routes: dlqRoutes({ db: ctx.db.kysely }) }] },
  );
  db = t.ctx.db.kysely;
  shop = await createTestTenant(t, 'dlq-shop');
  other = await createTestTenant(t, 'dlq-other');
  auth = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  otherAuth = { authorization: `Bearer ${(await login(t.app, other.slug, other.adminEmail)).accessToken}` };
});

afterAll(async () => {
  await t.close();
});

async function namespace() {
  const name = `dlq-${++nsCounter}`;
  await insertNamespace(db, shop.id, name, ['sink', 'mirror']);
  return name;
}

/** A message that died at `deadSecondsAgo` after failing on `target` with `error`. */
async function deadLetter(
  ns: string,
  messageId: string,
  error: string,
  target: string,
  deadSecondsAgo: number,
) {
  const id = await insertMessage(db, shop.id, ns, { messageId }, { messageId });
  await sql`
    update wal.messages set state = 'dead', attempts = 2, last_error = ${error}, targets_done = '{mirror}',
      dead_at = now() - ${deadSecondsAgo} * interval '1 second'
    where id = ${id}`.execute(db);
  await sql`
    insert into wal.attempts (message_pk, tenant_id, attempt, target, started_at, finished_at, outcome, error)
    values (${id}, ${shop.id}, 1, ${target}, now(), now(), 'failed', ${error}),
           (${id}, ${shop.id}, 2, ${target}, now(), now(), 'dead', ${error})`.execute(db);
  return id;
}

const get = (url: string, headers = auth) => t.app.inject({ method: 'GET', url, headers });
const post = (url: string, payload: object = {}, headers = auth) =>
  t.app.inject({ method: 'POST', url, payload, headers });

type Page = { items: { messageId: string; lastError: string }[]; nextCursor: string | null };

describe('dead letter routes', () => {
  it('should list dead letters newest first, filtered by error, target and time, in cursor pages', async () => {
    const ns = await namespace();
    await deadLetter(ns, 'a', 'sink: timeout after 5s', 'sink', 30);
    await deadLetter(ns, 'b', 'sink: HTTP 500', 'sink', 20);
    await deadLetter(ns, 'c', 'mirror: Timeout', 'mirror', 10);
    await insertMessage(db, shop.id, ns, {}, { messageId: 'still-pending' });
    const base = `/api/v1/wal/namespaces/${ns}/dlq`;

    const all = await get(base);
    expect(all.statusCode).toBe(200);
    expect(all.json<Page>().items.map((i) => i.messageId)).toEqual(['c', 'b', 'a']);
    expect((await get(`${base}?error=TIMEOUT`)).json<Page>().items.map((i) => i.messageId)).toEqual([
      'c',
      'a',
    ]);
    expect((await get(`${base}?target=sink`)).json<Page>().items.map((i) => i.messageId)).toEqual(['b', 'a']);
    const { rows } = await sql<{ t: string }>`select (now() - interval '15 seconds')::text as t`.execute(db);
    const from = new Date(rows[0]?.t as string).toISOString();
    expect((await get(`${base}?from=${from}`)).json<Page>().items.map((i) => i.messageId)).toEqual(['c']);
    expect((await get(`${base}?to=${from}`)).json<Page>().items.map((i) => i.messageId)).toEqual(['b', 'a']);

    const first = (await get(`${base}?limit=2`)).json<Page>();
    expect(first.items.map((i) => i.messageId)).toEqual(['c', 'b']);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = (await get(`${base}?limit=2&cursor=${first.nextCursor}`)).json<Page>();
    expect(second).toEqual({ items: [expect.objectContaining({ messageId: 'a' })], nextCursor: null });
    expect((await get(`${base}?cursor=bogus`)).statusCode).toBe(400);
  });

  it('should show one dead letter with the original message, every attempt and the final error', async () => {
    const ns = await namespace();
    const id = await deadLetter(ns, 'shown', 'sink: HTTP 500', 'sink', 5);
    const response = await get(`/api/v1/wal/namespaces/${ns}/dlq/shown`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      deliveryId: id,
      messageId: 'shown',
      payload: { messageId: 'shown' },
      attempts: 2,
      lastError: 'sink: HTTP 500',
      targetsDone: ['mirror'],
      history: [
        { attempt: 1, target: 'sink', outcome: 'failed', error: 'sink: HTTP 500' },
        { attempt: 2, target: 'sink', outcome: 'dead', error: 'sink: HTTP 500' },
      ],
    });
    expect((await get(`/api/v1/wal/namespaces/${ns}/dlq/missing`)).statusCode).toBe(404);
  });

  it('should requeue one dead letter and deliver it to the targets it had not reached', async () => {
    const ns = await namespace();
    const id = await deadLetter(ns, 'again', 'sink: HTTP 500', 'sink', 5);
    const engine = createDeliveryEngine({
      ctx: t.ctx,
      db,
      loadNamespace: (tenantId, name) => loadNamespaceWithSql(db, tenantId, name),
      deliver: deliverInternalOnly,
    });
    const reached: string[] = [];
    engine.registerHandler('sink', async (_trx, d) => void reached.push(`sink:${d.messageId}`));
    engine.registerHandler('mirror', async (_trx, d) => void reached.push(`mirror:${d.messageId}`));
    await engine.start();
    try {
      const response = await post(`/api/v1/wal/namespaces/${ns}/dlq/again/requeue`);
      expect(response.statusCode).toBe(202);
      expect(response.json()).toEqual({ requeued: 1 });
      const row = await eventually(async () => {
        const r = await messageRow(db, id);
        return r?.state === 'delivered' ? r : undefined;
      });
      expect(row.attempts).toBe(1);
      expect(reached.filter((r) => r.endsWith(':again'))).toEqual(['sink:again']);
      const { rows } = await sql<{ attempt: number; outcome: string }>`
        select attempt, outcome from wal.attempts where message_pk = ${id} order by attempt`.execute(db);
      expect(rows).toEqual([
        { attempt: 1, outcome: 'failed' },
        { attempt: 2, outcome: 'dead' },
        { attempt: 3, outcome: 'delivered' },
      ]);
    } finally {
      await engine.stop();
    }
    expect((await post(`/api/v1/wal/namespaces/${ns}/dlq/again/requeue`)).statusCode).toBe(404);
  });

  it('should requeue every dead letter matching a filter and report how many', async () => {
    const ns = await namespace();
    const ids = [
      await deadLetter(ns, 'x1', 'sink: timeout', 'sink', 5),
      await deadLetter(ns, 'x2', 'sink: timeout', 'sink', 5),
      await deadLetter(ns, 'x3', 'sink: HTTP 400', 'sink', 5),
    ];
    const response = await post(`/api/v1/wal/namespaces/${ns}/dlq/requeue`, { error: 'timeout' });
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ requeued: 2 });
    const states = await Promise.all(ids.map(async (id) => (await messageRow(db, id))?.state));
    expect(states).toEqual(['pending', 'pending', 'dead']);
    const { rows } = await sql<{ action: string; details: unknown }>`
      select action, details from wal.audit_log where tenant_id = ${shop.id} and action = 'dead_letter.requeued'
      order by at desc limit 1`.execute(db);
    expect(rows[0]?.action).toBe('dead_letter.requeued');
    // No body at all: no filter, every dead letter left.
    const all = await t.app.inject({
      method: 'POST',
      url: `/api/v1/wal/namespaces/${ns}/dlq/requeue`,
      headers: auth,
    });
    expect([all.statusCode, all.json()]).toEqual([202, { requeued: 1 }]);
  });

  it('should discard a dead letter and audit the discard', async () => {
    const ns = await namespace();
    const id = await deadLetter(ns, 'gone', 'sink: HTTP 500', 'sink', 5);
    const response = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/wal/namespaces/${ns}/dlq/gone`,
      headers: auth,
    });
    expect(response.statusCode).toBe(204);
    expect(await messageRow(db, id)).toBeUndefined();
    expect((await get(`/api/v1/wal/namespaces/${ns}/dlq/gone`)).statusCode).toBe(404);
    const { rows } = await sql<{ actor: string; subject: string; details: unknown }>`
      select actor, subject, details from wal.audit_log
      where tenant_id = ${shop.id} and action = 'dead_letter.discarded'`.execute(db);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor: `user:${shop.adminId}`, subject: `namespace:${ns}` });
    const details = rows[0]?.details;
    expect(typeof details === 'string' ? JSON.parse(details) : details).toMatchObject({
      messageId: 'gone',
      deliveryId: id,
      lastError: 'sink: HTTP 500',
    });
  });

  it("should answer 404 for another tenant's namespace and dead letters", async () => {
    const ns = await namespace();
    await deadLetter(ns, 'private', 'sink: HTTP 500', 'sink', 5);
    const base = `/api/v1/wal/namespaces/${ns}/dlq`;
    expect((await get(base, otherAuth)).statusCode).toBe(404);
    expect((await get(`${base}/private`, otherAuth)).statusCode).toBe(404);
    expect((await post(`${base}/private/requeue`, {}, otherAuth)).statusCode).toBe(404);
    expect((await post(`${base}/requeue`, {}, otherAuth)).statusCode).toBe(404);
    expect(
      (await t.app.inject({ method: 'DELETE', url: `${base}/private`, headers: otherAuth })).statusCode,
    ).toBe(404);
    expect((await get(base)).json<Page>().items).toHaveLength(1);
  });

  describe('bad filters and cursors', () => {
    type Problem = { code: string; errors: { in: string; pointer: string; message: string }[] };
    const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const id = '0190d4c5-7f8b-7c3e-9a4b-123456789abc';

    it('should answer 400 naming the field for times PostgreSQL cannot store, once 500s', async () => {
      const ns = await namespace();
      await deadLetter(ns, 'kept', 'sink: HTTP 500', 'sink', 5);
      const base = `/api/v1/wal/namespaces/${ns}/dlq`;
      for (const [field, value] of [
        ['from', '0000-01-01T00:00:00Z'],
        ['to', '0000-12-31T23:59:59.999Z'],
        ['from', '+275760-09-13T00:00:00.000Z'],
        ['to', '2024-01-01T00:00:00+16:00'],
        ['from', '2023-02-29T00:00:00Z'],
      ] as const) {
        const listed = await get(`${base}?${field}=${encodeURIComponent(value)}`);
        expect(listed.statusCode, `${field}=${value}: ${listed.body}`).toBe(400);
        expect(listed.json<Problem>()).toMatchObject({
          code: 'VALIDATION_FAILED',
          errors: [{ in: 'query', pointer: `/${field}` }],
        });
        const requeued = await post(`${base}/requeue`, { [field]: value });
        expect(requeued.statusCode, `${field}=${value}: ${requeued.body}`).toBe(400);
        expect(requeued.json<Problem>().errors).toEqual([
          expect.objectContaining({ in: 'body', pointer: `/${field}` }),
        ]);
      }
      // The edges of the range are fine, and nothing was requeued on the way.
      const edges = await get(`${base}?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59.999999Z`);
      expect(edges.json<Page>().items.map((i) => i.messageId)).toEqual(['kept']);
    });

    it('should answer 400 INVALID_CURSOR for a cursor that is not base64url, not JSON, or holds a bad time or id', async () => {
      const ns = await namespace();
      const base = `/api/v1/wal/namespaces/${ns}/dlq`;
      for (const [cursor, why] of [
        ['a.b', 'not base64url'],
        ['bogus=', 'not base64url'],
        [Buffer.from('[1,').toString('base64url'), 'not JSON'],
        [cursorOf({ deadAt: '2024-01-01T00:00:00Z', id }), 'not a [time, id] pair'],
        [cursorOf(['0000-01-01T00:00:00.000000Z', id]), 'not a time'],
        [cursorOf(['+275760-09-13T00:00:00.000Z', id]), 'not a time'],
        [cursorOf(['2024-01-01T00:00:00.000000Z', '------------------------------------']), 'not an id'],
        [cursorOf(['2024-01-01T00:00:00.000000Z', `urn:uuid:${id}`]), 'not an id'],
      ] as const) {
        const response = await get(`${base}?cursor=${cursor}`);
        expect(response.statusCode, `${cursor}: ${response.body}`).toBe(400);
        expect(response.json<Problem>()).toMatchObject({
          code: 'INVALID_CURSOR',
          errors: [{ in: 'query', pointer: '/cursor', message: `is not a valid cursor (${why})` }],
        });
      }
      const fine = await get(`${base}?cursor=${cursorOf(['2024-01-01T00:00:00.000000Z', id])}`);
      expect(fine.statusCode, fine.body).toBe(200);
    });
  });
});
