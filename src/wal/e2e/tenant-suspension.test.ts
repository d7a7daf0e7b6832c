import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { platformAdmin, send } from '../../identity/users/user-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

const BACKENDS: { backend: string; env: Record<string, string> }[] = [
  { backend: 'postgres', env: {} },
  ...(testRedisUrl() ? [{ backend: 'redis-streams', env: { REDIS_URL: testRedisUrl()! } }] : []),
];

// A suspended tenant's WAL deliveries wait (PATCH /tenants/{slug} status suspended) while other
// tenants' go on, and resume when it is reactivated.
describe.each(BACKENDS)('WAL deliveries of a suspended tenant on $backend', ({ backend, env }) => {
  let t: TestApp;
  let root: Record<string, string>;
  const receivers: Receiver[] = [];

  /** A tenant with a namespace `orders` whose http target is a fresh receiver. */
  async function shopWithReceiver(slug: string) {
    const tenant: TestTenant = await createTestTenant(t, slug);
    const admin = { authorization: `Bearer ${(await login(t.app, slug, tenant.adminEmail)).accessToken}` };
    const receiver = await startReceiver();
    receivers.push(receiver);
    const created = await post(
      t.app,
      '/api/v1/wal/namespaces',
      {
        name: 'orders',
        backend,
        allowedHosts: ['127.0.0.1'],
        targets: [{ name: 'hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 }],
      },
      admin,
    );
    expect(created.statusCode, created.body).toBe(201);
    const write = async (payload: unknown, delay?: number) => {
      const body = { namespace: 'orders', payload, ...(delay ? { lifecycle: { delay } } : {}) };
      const response = await post(t.app, '/api/v1/wal/write', body, admin);
      expect(response.statusCode, response.body).toBe(202);
      return response.json<{ messageId: string }>().messageId;
    };
    return { tenant, admin, receiver, write };
  }

  const dueYet = (messageId: string) =>
    withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows } = await sql<{ due: boolean }>`
        select due_at <= now() as due from wal.messages where message_id = ${messageId}`.execute(trx);
      return rows[0]?.due === true;
    });

  beforeAll(async () => {
    // The operator opens the loopback receivers to HTTP targets.
    t = await startTestApp(
      { ...env, MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    root = (await platformAdmin(t)).headers;
  });
  afterAll(async () => {
    await t.close();
    for (const receiver of receivers) await receiver.close();
  });

  it("holds its messages while suspended, delivers other tenants' meanwhile, and resumes", async () => {
    const paused = await shopWithReceiver(`paused-${backend}`);
    const busy = await shopWithReceiver(`busy-${backend}`);
    const first = await paused.write({ n: 0 });
    await until(() => paused.receiver.ids().has(first), 'delivery before the suspension');

    // Written before the suspension, due after it.
    const dueAt = Date.now() + 1500;
    const held = await paused.write({ n: 1 }, 1500);
    const suspended = await send(t.app, 'PATCH', `/api/v1/tenants/${paused.tenant.slug}`, root, {
      status: 'suspended',
    });
    expect(suspended.statusCode, suspended.body).toBe(200);
    expect((await send(t.app, 'GET', '/api/v1/wal/namespaces', paused.admin)).statusCode).toBe(403);

    // Once the held message is due, another tenant's message written later is delivered: the
    // consumers ran past the held one's due time and left it alone.
    // (A stream backend keeps a delayed message in the stream server: its clock is read here.)
    await until(
      () => (backend === 'postgres' ? dueYet(held) : Date.now() > dueAt + 500),
      'the held message to fall due',
    );
    const other = await busy.write({ n: 2 });
    await until(() => busy.receiver.ids().has(other), "the other tenant's delivery");
    expect(paused.receiver.ids().has(held)).toBe(false);

    const resumed = await send(t.app, 'PATCH', `/api/v1/tenants/${paused.tenant.slug}`, root, {
      status: 'active',
    });
    expect(resumed.statusCode, resumed.body).toBe(200);
    await until(() => paused.receiver.ids().has(held), 'the held message after resuming');
  });
});
