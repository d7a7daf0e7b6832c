import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { bearer, platformAdmin, send } from '../../identity/users/user-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { PLATFORM_TENANT_ID } from '../../platform/http/index.ts';
import type { AppContext } from '../../platform/index.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../../platform/testing/index.ts';
import type { WalDeps } from '../deps.ts';
import type { WalTables } from '../tables.ts';
import { createNamespaceCache, namespaceRoutes } from './index.ts';
import { SQL_NEEDS_POSTGRES } from './namespace.ts';

const NS = '/api/v1/wal/namespaces';

// The attacks of issue 9: a tenant admin's sql target that makes itself the platform tenant and
// adds an admin there, and one that takes PGlite's superuser role to read the JWT signing keys
// (on PGlite the operator's own statement could too, so there nobody gets an sql target).
const INTO_THE_PLATFORM = {
  type: 'sql',
  name: 'takeover',
  statement: `with ctx as (select set_config('app.tenant_id', '${PLATFORM_TENANT_ID}', true))
    insert into identity.users (id, tenant_id, email, name, role, password_hash)
    select gen_random_uuid(), '${PLATFORM_TENANT_ID}', 'evil@attacker.test', 'evil', 'admin', 'x' from ctx`,
  params: [],
};
const SUPERUSER = {
  type: 'sql',
  name: 'keys',
  statement: "select set_config('role', 'postgres', true), private_pem from platform.signing_keys",
  params: [],
};

function walModule(ctx: AppContext) {
  const db = ctx.db.kysely as Kysely<WalTables>;
  const deps: WalDeps = { ctx, db, namespaces: createNamespaceCache(ctx, db), streams: new Map() };
  return {
    name: 'wal-test',
    async routes(app: FastifyInstance) {
      await app.register(namespaceRoutes(deps));
    },
    start: () => deps.namespaces.start(),
    stop: () => deps.namespaces.stop(),
  };
}

describe('sql targets are for the operator only', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  let operator: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({}, { modules: async (ctx) => [walModule(ctx)] });
    shop = await createTestTenant(t, 'sqlshop');
    admin = await bearer(t, shop.slug, shop.adminEmail);
    operator = (await platformAdmin(t)).headers;
  });
  afterAll(() => t.close());

  /** What the database holds of a tenant's namespaces and their audit, read as the owner. */
  const stored = (tenantId: string) =>
    withSystem(t.ctx.db.kysely as Kysely<WalTables>, async (trx) => ({
      namespaces: await trx
        .selectFrom('wal.namespaces')
        .select(['name', 'targets'])
        .where('tenant_id', '=', tenantId)
        .where('system', '=', false)
        .orderBy('name')
        .execute(),
      audit: (
        await trx.selectFrom('wal.audit_log').select('action').where('tenant_id', '=', tenantId).execute()
      ).map((row) => row.action),
    }));

  const expectForbidden = (response: Awaited<ReturnType<typeof send>>, pointer: string) => {
    expect(response.statusCode).toBe(403);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({
      status: 403,
      code: 'TARGET_TYPE_FORBIDDEN',
      errors: [{ in: 'body', pointer }],
    });
  };

  it("refuses a tenant admin's sql target that sets app.tenant_id to the platform's: 403, nothing stored", async () => {
    const response = await send(t.app, 'POST', NS, admin, {
      name: 'orders',
      targets: [{ type: 'internal', name: 'ok', handler: 'orders.reserve' }, INTO_THE_PLATFORM],
    });
    expectForbidden(response, '/targets/1/type');
    expect(await stored(shop.id)).toEqual({ namespaces: [], audit: [] });
    expect((await send(t.app, 'GET', `${NS}/orders`, admin)).statusCode).toBe(404);
  });

  it("refuses a tenant admin's sql target that switches to the superuser role to read signing keys", async () => {
    const response = await send(t.app, 'POST', NS, admin, { name: 'keys', targets: [SUPERUSER] });
    expectForbidden(response, '/targets/0/type');
    expect(await stored(shop.id)).toEqual({ namespaces: [], audit: [] });
  });

  it('refuses an update that adds an sql target and leaves the namespace as it was', async () => {
    expect((await send(t.app, 'POST', NS, admin, { name: 'plain' })).statusCode).toBe(201);
    const before = (await send(t.app, 'GET', `${NS}/plain`, admin)).json();
    const response = await send(t.app, 'PUT', `${NS}/plain`, admin, {
      enabled: false,
      targets: [INTO_THE_PLATFORM],
    });
    expectForbidden(response, '/targets/0/type');
    expect((await send(t.app, 'GET', `${NS}/plain`, admin)).json()).toEqual(before);
    expect((await stored(shop.id)).audit).toEqual(['namespace.created']);
  });

  it('answers 403 for an sql target before checking the other fields', async () => {
    const response = await send(t.app, 'POST', NS, admin, {
      name: 'mixed',
      targets: [
        { type: 'http', name: 'bad', url: 'ftp://x', secret: 'nope' },
        { ...SUPERUSER, params: 'x' },
      ],
    });
    expectForbidden(response, '/targets/1/type');
  });

  // sql targets are accepted on PostgreSQL only; on PGlite the operator gets the 403 below.
  describe.runIf(testDatabaseKind() === 'postgres')('the operator on PostgreSQL', () => {
    it('lets the operator (an admin of the platform tenant) define and change sql targets', async () => {
      const target = { type: 'sql', name: 'mark', statement: 'select $1::text', params: ['/payload/id'] };
      const created = await send(t.app, 'POST', NS, operator, { name: 'ops', targets: [target] });
      expect(created.statusCode).toBe(201);
      expect(created.json().targets).toEqual([{ ...target, enabled: true }]);
      const updated = await send(t.app, 'PUT', `${NS}/ops`, operator, {
        targets: [target, { ...target, name: 'second', statement: 'select 1', params: [] }],
      });
      expect(updated.statusCode).toBe(200);
      expect(updated.json().targets.map((x: { name: string }) => x.name)).toEqual(['mark', 'second']);
      expect((await stored(PLATFORM_TENANT_ID)).namespaces.map((n) => n.name)).toEqual(['ops']);
    });

    it("names every bad field of the operator's sql target", async () => {
      const response = await send(t.app, 'POST', NS, operator, {
        name: 'badsql',
        targets: [{ type: 'sql', name: 'c', statement: '  ', params: ['data/id'], extra: 1 }],
      });
      expect(response.statusCode).toBe(400);
      expect(
        response
          .json()
          .errors.map((e: { pointer: string }) => e.pointer)
          .sort(),
      ).toEqual(['/targets/0/extra', '/targets/0/params/0', '/targets/0/statement']);
    });
  });

  // PGlite runs every statement in its superuser session: an sql target would be a way to it.
  describe.runIf(testDatabaseKind() === 'pglite')('nobody on PGlite, not even the operator', () => {
    const expectNeedsPostgres = (response: Awaited<ReturnType<typeof send>>, pointer: string) => {
      expectForbidden(response, pointer);
      expect(response.json()).toMatchObject({
        detail: SQL_NEEDS_POSTGRES,
        errors: [{ message: 'sql targets need PostgreSQL (DATABASE_URL)' }],
      });
    };

    it("refuses the operator's sql target that switches to the superuser role to read signing keys: 403, nothing stored", async () => {
      const before = await stored(PLATFORM_TENANT_ID);
      const response = await send(t.app, 'POST', NS, operator, { name: 'opskeys', targets: [SUPERUSER] });
      expectNeedsPostgres(response, '/targets/0/type');
      expect(await stored(PLATFORM_TENANT_ID)).toEqual(before);
      expect((await send(t.app, 'GET', `${NS}/opskeys`, operator)).statusCode).toBe(404);
    });

    it("refuses an update of the operator's namespace that adds an sql target, and leaves it as it was", async () => {
      expect((await send(t.app, 'POST', NS, operator, { name: 'opsplain' })).statusCode).toBe(201);
      const before = (await send(t.app, 'GET', `${NS}/opsplain`, operator)).json();
      const response = await send(t.app, 'PUT', `${NS}/opsplain`, operator, {
        targets: [{ type: 'internal', name: 'ok', handler: 'orders.reserve' }, SUPERUSER],
      });
      expectNeedsPostgres(response, '/targets/1/type');
      expect((await send(t.app, 'GET', `${NS}/opsplain`, operator)).json()).toEqual(before);
    });
  });
});
