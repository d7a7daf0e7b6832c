import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal, type WalModule } from '../index.ts';
import { disableTarget } from './index.ts';
import type { Target } from './namespace.ts';

const SECRET = `whsec_${Buffer.from('a-secret-of-at-least-24-bytes!!').toString('base64')}`;
const hook = (name: string) => ({
  name,
  type: 'http',
  url: `https://${name}.example.test/hook`,
  secret: SECRET,
  timeoutMs: 1000,
  enabled: true,
});

describe('disabling a target whose endpoint is gone', () => {
  let t: TestApp;
  let wal: WalModule;
  let shop: TestTenant;
  let admin: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp(
      {},
      {
        modules: async (ctx) => {
          wal = await createWal(ctx);
          return [wal];
        },
      },
    );
    shop = await createTestTenant(t, 'gone');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const created = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'orders', targets: [hook('a'), hook('b')] },
      admin,
    );
    expect(created.statusCode).toBe(201);
  });
  afterAll(() => t.close());

  it('switches off only that target, audits it, and does nothing the second time', async () => {
    const change = { tenantId: shop.id, actor: 'system:wal' };
    const disable = () =>
      withTenant(wal.deps.db, shop.id, (trx) =>
        disableTarget(trx, change, 'orders', 'a', 'HTTP 410 from endpoint'),
      );
    expect(await disable()).toBe(true);
    expect(await disable()).toBe(false);
    const ns = (await t.app.inject({ url: '/api/v1/wal/namespaces/orders', headers: admin })).json<{
      targets: Target[];
    }>();
    expect(ns.targets.map((x) => [x.name, x.enabled])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    const audit = (await t.app.inject({ url: '/api/v1/wal/audit', headers: admin })).json<{
      items: { action: string; actor: string; details: Record<string, unknown> }[];
    }>();
    const entries = audit.items.filter((e) => e.action === 'namespace.target_disabled');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      actor: 'system:wal',
      details: { target: 'a', reason: 'HTTP 410 from endpoint' },
    });
  });
});
