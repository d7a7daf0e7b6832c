import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

// MERCATO_WAL_DELIVERY=false: a process that takes writes and leaves delivery to others.
describe('a process with WAL delivery off', () => {
  let t: TestApp;
  let receiver: Receiver;

  beforeAll(async () => {
    t = await startTestApp(
      { MERCATO_WAL_DELIVERY: 'false', MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it('takes writes and delivers none of them; a process with delivery on delivers them', async () => {
    const shop = await createTestTenant(t, 'wal-writer');
    const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const namespace = {
      name: 'orders',
      targets: [
        {
          name: 'hook',
          type: 'http',
          url: receiver.url,
          secret: newSecret(),
          timeoutMs: 2000,
          enabled: true,
        },
      ],
    };
    expect((await post(t.app, '/api/v1/wal/namespaces', namespace, admin)).statusCode).toBe(201);
    const written = await post(t.app, '/api/v1/wal/write', { namespace: 'orders', payload: { n: 1 } }, admin);
    expect(written.statusCode, written.body).toBe(202);
    const { messageId } = written.json<{ messageId: string }>();
    const state = async () =>
      (
        await t.app.inject({ url: `/api/v1/wal/messages/${messageId}?namespace=orders`, headers: admin })
      ).json<{ state: string }>().state;

    // This process's consumer would have delivered it well within this time.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.received).toHaveLength(0);
    expect(await state()).toBe('pending');

    // Another "process" on the same database, with delivery on (a registry of its own for its metrics).
    const deliverer = await createWal({
      ...t.ctx,
      config: { ...t.ctx.config, walDelivery: true },
      metrics: { ...t.ctx.metrics, registry: new Registry() },
    });
    await deliverer.start?.();
    try {
      await until(() => receiver.received.length === 1, 'the delivery');
      await until(async () => (await state()) === 'delivered', 'the delivered state');
    } finally {
      await deliverer.stop?.();
    }
  });
});
