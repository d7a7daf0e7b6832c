import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { MIGRATIONS_DIR } from '../../platform/db/migrator.ts';
import { SYSTEM_TOPICS } from '../../platform/events/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { newSecret } from '../e2e/receiver.ts';
import { createWal } from '../index.ts';
import {
  ensureAllSystemNamespaces,
  SYSTEM_MIN_DEAD_RETENTION_SECONDS,
} from '../namespaces/system-namespaces.ts';
import type { WalTables } from '../tables.ts';

type View = { name: string; system: boolean; backend: string; enabled: boolean; targets: { name: string }[] };

// Every tenant has the domain-event namespaces (SYSTEM_TOPICS): created with the tenant, present
// for tenants older than migration 0015, and beyond the tenant admin's reach but for its targets.
describe('WAL system namespaces', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  const MAX = 2;

  beforeAll(async () => {
    t = await startTestApp(
      { MERCATO_WAL_MAX_NAMESPACES: String(MAX) },
      // startTestApp hands wal.onTenantCreated to identity, as server.ts does.
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    shop = await createTestTenant(t, 'sys-shop');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t?.close();
  });

  const get = (url: string) => t.app.inject({ method: 'GET', url, headers: admin });
  const put = (name: string, body: unknown) =>
    t.app.inject({
      method: 'PUT',
      url: `/api/v1/wal/namespaces/${name}`,
      payload: body as object,
      headers: admin,
    });

  async function systemRows(tenantId: string) {
    return withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows } = await sql<{ name: string; system: boolean; backend: string }>`
        select name, system, backend from wal.namespaces where tenant_id = ${tenantId} and system order by name`.execute(
        trx,
      );
      return rows;
    });
  }

  it('gives a new tenant its five system namespaces in its creation transaction, shown with system: true', async () => {
    const list = await get('/api/v1/wal/namespaces');
    expect(list.statusCode).toBe(200);
    const items = list.json<{ items: View[] }>().items;
    expect(
      items
        .filter((n) => n.system)
        .map((n) => n.name)
        .sort(),
    ).toEqual([...SYSTEM_TOPICS].sort());
    const one = await get('/api/v1/wal/namespaces/product-events');
    expect(one.json()).toMatchObject({
      name: 'product-events',
      system: true,
      backend: 'postgres',
      enabled: true,
      consumerConcurrency: 64,
    });
  });

  it('lets the tenant lower a system namespace’s concurrency (64 by default) for its webhook', async () => {
    const lowered = await put('notification-events', { consumerConcurrency: 4 });
    expect(lowered.statusCode, lowered.body).toBe(200);
    expect(lowered.json()).toMatchObject({ system: true, consumerConcurrency: 4 });
    expect((await get('/api/v1/wal/namespaces/notification-events')).json().consumerConcurrency).toBe(4);
  });

  it('keeps a system namespace’s dead letters at least 7 days: a shorter deadRetentionSeconds is refused (400), a longer one taken', async () => {
    const shorter = await put('order-events', { deadRetentionSeconds: 0 });
    expect(shorter.statusCode, shorter.body).toBe(400);
    expect(shorter.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ pointer: '/deadRetentionSeconds' }],
    });
    expect((await get('/api/v1/wal/namespaces/order-events')).json().deadRetentionSeconds).toBe(2_592_000);
    const longer = await put('order-events', { deadRetentionSeconds: SYSTEM_MIN_DEAD_RETENTION_SECONDS });
    expect(longer.statusCode, longer.body).toBe(200);
    expect(longer.json()).toMatchObject({ deadRetentionSeconds: SYSTEM_MIN_DEAD_RETENTION_SECONDS });

    // One set to 0 before the rule (written as the old code let it be) is raised by migration 0049.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update wal.namespaces set dead_retention_seconds = 0
        where tenant_id = ${shop.id} and name = 'payment-events'`.execute(trx),
    );
    const migration = await readFile(
      join(MIGRATIONS_DIR, '0049_wal_system_dead_retention_floor.sql'),
      'utf8',
    );
    await t.ctx.db.withScriptRunner((runner) => runner.exec(`begin; ${migration}; commit;`));
    expect((await get('/api/v1/wal/namespaces/payment-events')).json().deadRetentionSeconds).toBe(
      SYSTEM_MIN_DEAD_RETENTION_SECONDS,
    );
  });

  it('backfills tenants that existed before migration 0015 (the platform tenant), and the WAL start fills any gap', async () => {
    const platform = await withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows } = await sql<{
        id: string;
      }>`select id from identity.tenants where slug = 'platform'`.execute(trx);
      return rows[0]!.id;
    });
    expect((await systemRows(platform)).map((r) => r.name).sort()).toEqual([...SYSTEM_TOPICS].sort());

    // A tenant made without the hook (say by another process), one of whose namespaces is lost:
    // every WAL start puts them back.
    const bare = await createTestTenant(t, 'sys-bare');
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`delete from wal.namespaces where tenant_id = ${bare.id} and name = 'order-events'`.execute(trx),
    );
    expect(await systemRows(bare.id)).toHaveLength(SYSTEM_TOPICS.length - 1);
    await ensureAllSystemNamespaces(t.ctx.db.kysely as Kysely<WalTables>, 'postgres');
    expect((await systemRows(bare.id)).map((r) => r.name).sort()).toEqual([...SYSTEM_TOPICS].sort());
  });

  it('refuses DELETE, disabling, renaming and a change of backend with 409 SYSTEM_NAMESPACE, and changes nothing', async () => {
    const before = (await get('/api/v1/wal/namespaces/inventory-events')).json();
    const deleted = await t.app.inject({
      method: 'DELETE',
      url: '/api/v1/wal/namespaces/inventory-events',
      headers: admin,
    });
    expect(deleted.statusCode).toBe(409);
    expect(deleted.json()).toMatchObject({ code: 'SYSTEM_NAMESPACE' });
    for (const body of [
      { enabled: false },
      { name: 'my-events' },
      { backend: 'nats-jetstream' },
      { maxPayloadBytes: 10 },
    ]) {
      const response = await put('inventory-events', body);
      expect(response.statusCode, JSON.stringify(body)).toBe(409);
      expect(response.json().code).toBe('SYSTEM_NAMESPACE');
    }
    expect((await get('/api/v1/wal/namespaces/inventory-events')).json()).toEqual(before);
    // Renaming an ordinary namespace is no API either.
    expect((await post(t.app, '/api/v1/wal/namespaces', { name: 'plain' }, admin)).statusCode).toBe(201);
    const renamed = await put('plain', { name: 'other' });
    expect(renamed.statusCode).toBe(400);
    expect(renamed.json().errors).toEqual([expect.objectContaining({ pointer: '/name' })]);
  });

  it('lets the tenant add its own webhook and set the retry policy, and a GET-then-PUT round trip', async () => {
    const hook = {
      name: 'my-hook',
      type: 'http',
      url: 'https://hooks.example.com/mercato',
      secret: newSecret(),
      types: ['mercato.order.*'],
    };
    const changed = await put('order-events', {
      targets: [hook],
      retry: { maxAttempts: 5 },
      deliveredRetentionSeconds: 3600,
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({
      system: true,
      retry: { maxAttempts: 5 },
      targets: [{ name: 'my-hook', types: ['mercato.order.*'] }],
    });
    const {
      createdAt: _c,
      updatedAt: _u,
      system: _s,
      drainingBackends: _d,
      ...view
    } = (await get('/api/v1/wal/namespaces/order-events')).json();
    // (circuit is what this process's breaker says: read-only, as on every namespace)
    const targets = view.targets.map(({ circuit: _circuit, ...target }: Record<string, unknown>) => target);
    const again = await put('order-events', { ...view, targets });
    expect(again.statusCode, again.body).toBe(200);
  });

  it('does not count system namespaces toward MERCATO_WAL_MAX_NAMESPACES', async () => {
    // 'plain' exists already; one more reaches the limit of 2, five system namespaces besides.
    expect((await post(t.app, '/api/v1/wal/namespaces', { name: 'second' }, admin)).statusCode).toBe(201);
    const third = await post(t.app, '/api/v1/wal/namespaces', { name: 'third' }, admin);
    expect(third.statusCode).toBe(409);
    expect(third.json().code).toBe('NAMESPACE_LIMIT_REACHED');
  });

  it('reserves the system names and refuses writes to them over HTTP (only modules publish domain events)', async () => {
    const fresh = await createTestTenant(t, 'sys-fresh');
    const freshAdmin = {
      authorization: `Bearer ${(await login(t.app, fresh.slug, fresh.adminEmail)).accessToken}`,
    };
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`delete from wal.namespaces where tenant_id = ${fresh.id} and name = 'payment-events'`.execute(trx),
    );
    const taken = await post(t.app, '/api/v1/wal/namespaces', { name: 'payment-events' }, freshAdmin);
    expect(taken.statusCode).toBe(409);
    expect(taken.json().code).toBe('SYSTEM_NAMESPACE');
    const forged = await post(
      t.app,
      '/api/v1/wal/write',
      {
        namespace: 'product-events',
        payload: { id: 'x' },
        headers: { 'ce-type': 'mercato.product.deleted' },
      },
      admin,
    );
    expect(forged.statusCode).toBe(403);
  });
});
