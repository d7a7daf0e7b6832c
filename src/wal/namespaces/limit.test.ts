import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import { secretBoxOf } from '../../platform/secrets.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import type { WalTables } from '../tables.ts';
import { checkNamespaceLimit } from './limit.ts';
import { createNamespace } from './store.ts';

// MERCATO_WAL_MAX_NAMESPACES bounds a tenant's namespaces (each may hold
// MERCATO_WAL_MAX_CONCURRENCY deliveries in flight and its own circuit-breaker labels).
const MAX = 3;

let t: TestApp;
let shop: Record<string, string>;
let rival: Record<string, string>;
let raceTenantId: string;

beforeAll(async () => {
  t = await startTestApp(
    { MERCATO_WAL_MAX_NAMESPACES: String(MAX) },
    { modules: async (ctx) => [await createWal(ctx)] },
  );
  const a = await createTestTenant(t, 'limit-shop');
  const b = await createTestTenant(t, 'limit-rival');
  shop = { authorization: `Bearer ${(await login(t.app, a.slug, a.adminEmail)).accessToken}` };
  raceTenantId = (await createTestTenant(t, 'limit-race')).id;
  rival = { authorization: `Bearer ${(await login(t.app, b.slug, b.adminEmail)).accessToken}` };
});

afterAll(async () => {
  await t.close();
});

const create = (headers: Record<string, string>, name: string) =>
  post(t.app, '/api/v1/wal/namespaces', { name, targets: [] }, headers);

describe('WAL namespaces: MERCATO_WAL_MAX_NAMESPACES per tenant', () => {
  it('lets exactly one of two concurrent creates at the limit through, and refuses the other with 409 NAMESPACE_LIMIT_REACHED', async () => {
    for (let i = 1; i < MAX; i++) expect((await create(shop, `ns-${i}`)).statusCode).toBe(201);

    const both = await Promise.all([create(shop, 'race-a'), create(shop, 'race-b')]);
    const statuses = both.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([201, 409]);
    const refused = both.find((response) => response.statusCode === 409)!;
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toMatchObject({ code: 'NAMESPACE_LIMIT_REACHED', status: 409 });
    expect(refused.json().detail).toMatch(/already has 3 namespaces/);

    const list = await t.app.inject({ method: 'GET', url: '/api/v1/wal/namespaces', headers: shop });
    // Beside the tenant's five system namespaces, which do not count.
    expect(list.json().items.filter((n: { system: boolean }) => !n.system)).toHaveLength(MAX);
  });

  it('keeps refusing past the limit, while another tenant still creates its own', async () => {
    const more = await create(shop, 'one-more');
    expect(more.statusCode).toBe(409);
    expect(more.json().code).toBe('NAMESPACE_LIMIT_REACHED');
    expect((await create(rival, 'ns-1')).statusCode).toBe(201);
  });

  it("makes a create at the limit wait for a concurrent create's transaction, then counts its namespace", async () => {
    const db = t.ctx.db.kysely as Kysely<WalTables>;
    let inserted!: () => void;
    const insertedYet = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    let commit!: () => void;
    const committing = new Promise<void>((resolve) => {
      commit = resolve;
    });
    const order: string[] = [];
    const first = withTenant(db, raceTenantId, async (trx) => {
      await checkNamespaceLimit(trx, raceTenantId, 1);
      await createNamespace(trx, { tenantId: raceTenantId, actor: 'test' }, 'first', {}, secretBoxOf(t.ctx));
      inserted();
      await committing;
      order.push('first committed');
    });
    await insertedYet;
    const second = withTenant(db, raceTenantId, (trx) => checkNamespaceLimit(trx, raceTenantId, 1)).then(
      () => order.push('second allowed'),
      (error: { code?: string }) => order.push(`second refused ${error.code}`),
    );
    commit();
    await Promise.all([first, second]);
    expect(order).toEqual(['first committed', 'second refused NAMESPACE_LIMIT_REACHED']);
  });
});
