import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from '../../identity/users/user-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import type { Principal } from '../../platform/http/index.ts';
import type { AppContext } from '../../platform/index.ts';
import { secretBoxOf } from '../../platform/secrets.ts';
import {
  startSecondProcess,
  startTestApp,
  type TestApp,
  testDatabaseKind,
} from '../../platform/testing/index.ts';
import { auditRoutes } from '../audit/index.ts';
import type { WalDeps } from '../deps.ts';
import type { WalTables } from '../tables.ts';
import { MAX_TARGET_HEADER_BYTES, MAX_TARGET_HEADERS } from './check-target.ts';
import { canWriteNamespace, createNamespaceCache, namespaceRoutes } from './index.ts';
import type { Namespace, Target } from './namespace.ts';
import { openTargets } from './sealed-targets.ts';

const NS = '/api/v1/wal/namespaces';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OTHER_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

function walModule(ctx: AppContext) {
  const db = ctx.db.kysely as Kysely<WalTables>;
  const deps: WalDeps = { ctx, db, namespaces: createNamespaceCache(ctx, db), streams: new Map() };
  return {
    deps,
    module: {
      name: 'wal-test',
      async routes(app: FastifyInstance) {
        await app.register(namespaceRoutes(deps));
        await app.register(auditRoutes(deps));
      },
      start: () => deps.namespaces.start(),
      stop: () => deps.namespaces.stop(),
    },
  };
}

const eventually = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
  expect(await check()).toBe(true);
};

describe('WAL namespaces', () => {
  let t: TestApp;
  let wal: WalDeps;
  let shop: TestTenant;
  let rival: TestTenant;
  let admin: Record<string, string>;
  let rivalAdmin: Record<string, string>;
  let staff: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp(
      {},
      {
        modules: async (ctx) => {
          const built = walModule(ctx);
          wal = built.deps;
          return [built.module];
        },
      },
    );
    shop = await createTestTenant(t, 'walshop');
    rival = await createTestTenant(t, 'walrival');
    admin = await bearer(t, shop.slug, shop.adminEmail);
    rivalAdmin = await bearer(t, rival.slug, rival.adminEmail);
    await addUser(t, shop.id, 'staff@walshop.test', 'staff');
    staff = await bearer(t, shop.slug, 'staff@walshop.test');
  });
  afterAll(() => t.close());

  const create = (body: Record<string, unknown>, headers = admin) => send(t.app, 'POST', NS, headers, body);

  describe('CRUD', () => {
    it('creates a namespace with defaults and answers 201 with its location', async () => {
      const response = await create({ name: 'orders' });
      expect(response.statusCode).toBe(201);
      expect(response.headers.location).toBe(`${NS}/orders`);
      expect(response.json()).toMatchObject({
        name: 'orders',
        backend: 'postgres',
        fallbackBackend: null,
        payloadSchema: null,
        retry: {
          strategy: 'exponential',
          baseDelayMs: 1000,
          maxDelayMs: 300000,
          maxAttempts: 10,
          jitter: 0.2,
        },
        targets: [],
        rateLimitPerSecond: null,
        maxPayloadBytes: 262144,
        consumerConcurrency: 8,
        enabled: true,
      });
    });

    it('creates a namespace with every setting and reads it back', async () => {
      const body = {
        name: 'payments.events',
        backend: 'redis-streams',
        fallbackBackend: 'postgres',
        payloadSchema: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } },
        retry: { strategy: 'linear', baseDelayMs: 500, maxDelayMs: 60000, maxAttempts: 5, jitter: 0.5 },
        targets: [
          { type: 'internal', name: 'reserve', handler: 'orders.reserve' },
          { type: 'redis', name: 'tell', command: 'PUBLISH', key: 'carts', message: '{/data/id}' },
          { type: 'redis', name: 'bust', command: 'DEL', key: 'cart:{/data/id}', enabled: false },
        ],
        rateLimitPerSecond: 100,
        maxDelayMs: 3600000,
        maxPayloadBytes: 1024,
        deliveredRetentionSeconds: 60,
        deadRetentionSeconds: 120,
        allowedHosts: ['hooks.example.com'],
        consumerConcurrency: 4,
        enabled: false,
      };
      expect((await create(body)).statusCode).toBe(201);
      const read = await send(t.app, 'GET', `${NS}/payments.events`, admin);
      expect(read.statusCode).toBe(200);
      const { createdAt: _c, updatedAt: _u, ...settings } = read.json();
      expect(settings).toEqual({
        ...body,
        system: false,
        drainingBackends: [],
        targets: [
          { type: 'internal', name: 'reserve', handler: 'orders.reserve', enabled: true },
          {
            type: 'redis',
            name: 'tell',
            command: 'PUBLISH',
            key: 'carts',
            message: '{/data/id}',
            enabled: true,
          },
          { type: 'redis', name: 'bust', command: 'DEL', key: 'cart:{/data/id}', enabled: false },
        ],
      });
    });

    it('answers 409 CONFLICT for a name the tenant already uses', async () => {
      const response = await create({ name: 'orders' });
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({ code: 'CONFLICT' });
    });

    it('lets another tenant use the same name', async () => {
      expect((await create({ name: 'orders' }, rivalAdmin)).statusCode).toBe(201);
    });

    it('lists the tenant namespaces by name, and only its own', async () => {
      const response = await send(t.app, 'GET', NS, admin);
      expect(response.statusCode).toBe(200);
      expect(response.json().items.map((n: Namespace) => n.name)).toEqual(['orders', 'payments.events']);
    });

    it('updates only the fields sent, merging retry settings', async () => {
      const response = await send(t.app, 'PUT', `${NS}/orders`, admin, {
        retry: { maxAttempts: 3 },
        rateLimitPerSecond: 50,
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        name: 'orders',
        rateLimitPerSecond: 50,
        retry: { strategy: 'exponential', baseDelayMs: 1000, maxAttempts: 3 },
        maxPayloadBytes: 262144,
      });
      const cleared = await send(t.app, 'PUT', `${NS}/orders`, admin, { rateLimitPerSecond: null });
      expect(cleared.json().rateLimitPerSecond).toBeNull();
    });

    it('keeps a stream backend the namespace moved off among its draining backends until it is named again', async () => {
      expect((await create({ name: 'moving', backend: 'redis-streams' })).json().drainingBackends).toEqual(
        [],
      );
      const move = async (body: Record<string, unknown>) => {
        const response = await send(t.app, 'PUT', `${NS}/moving`, admin, body);
        expect(response.statusCode, response.body).toBe(200);
        const read = await send(t.app, 'GET', `${NS}/moving`, admin);
        expect(read.json().drainingBackends).toEqual(response.json().drainingBackends);
        return response.json().drainingBackends;
      };
      expect(await move({ backend: 'nats-jetstream', fallbackBackend: 'postgres' })).toEqual([
        'redis-streams',
      ]);
      // Another setting changed: nothing moves.
      expect(await move({ rateLimitPerSecond: 10 })).toEqual(['redis-streams']);
      // A fallback dropped drains too; postgres never does (its lease serves every namespace).
      expect(await move({ backend: 'postgres', fallbackBackend: 'nats-jetstream' })).toEqual([
        'redis-streams',
      ]);
      expect(await move({ fallbackBackend: null })).toEqual(['nats-jetstream', 'redis-streams']);
      expect(await move({ fallbackBackend: 'redis-streams' })).toEqual(['nats-jetstream']);
      expect(await move({ backend: 'nats-jetstream', fallbackBackend: null })).toEqual(['redis-streams']);
      // Not a setting: a request cannot set it.
      const refused = await send(t.app, 'PUT', `${NS}/moving`, admin, { drainingBackends: [] });
      expect(refused.statusCode).toBe(400);
      expect((await send(t.app, 'GET', `${NS}/moving`, admin)).json().drainingBackends).toEqual([
        'redis-streams',
      ]);
    });

    it('refuses to rename through PUT', async () => {
      const response = await send(t.app, 'PUT', `${NS}/orders`, admin, { name: 'other' });
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toEqual([expect.objectContaining({ pointer: '/name' })]);
    });

    it('deletes a namespace and its messages, then answers 404 for it', async () => {
      expect((await create({ name: 'doomed' })).statusCode).toBe(201);
      await withTenant(wal.db, shop.id, (trx) =>
        trx
          .insertInto('wal.messages')
          .values({
            id: '01900000-0000-7000-8000-000000000001',
            tenant_id: shop.id,
            namespace: 'doomed',
            message_id: 'm1',
            payload: '{}',
            headers: '{}',
            request_hash: 'h',
            backend: 'postgres',
            state: 'pending',
            due_at: new Date(),
            max_attempts: 3,
          })
          .execute(),
      );
      const response = await send(t.app, 'DELETE', `${NS}/doomed`, admin);
      expect(response.statusCode).toBe(204);
      expect((await send(t.app, 'GET', `${NS}/doomed`, admin)).statusCode).toBe(404);
      const left = await withSystem(wal.db, (trx) =>
        trx.selectFrom('wal.messages').select('id').where('namespace', '=', 'doomed').execute(),
      );
      expect(left).toEqual([]);
      expect((await send(t.app, 'DELETE', `${NS}/doomed`, admin)).statusCode).toBe(404);
    });

    it('answers 404 NOT_FOUND for an unknown namespace on GET, PUT and DELETE', async () => {
      for (const method of ['GET', 'PUT', 'DELETE'] as const) {
        const response = await send(
          t.app,
          method,
          `${NS}/nope`,
          admin,
          method === 'PUT' ? { enabled: false } : undefined,
        );
        expect(response.statusCode).toBe(404);
        expect(response.json()).toMatchObject({ code: 'NOT_FOUND' });
      }
    });
  });

  describe('tenancy and roles', () => {
    it("hides a tenant's namespace from another tenant's admin on GET, PUT and DELETE", async () => {
      expect((await create({ name: 'secret.stuff' })).statusCode).toBe(201);
      for (const method of ['GET', 'PUT', 'DELETE'] as const) {
        const response = await send(
          t.app,
          method,
          `${NS}/secret.stuff`,
          rivalAdmin,
          method === 'PUT' ? { enabled: false } : undefined,
        );
        expect(response.statusCode).toBe(404);
      }
      const still = await send(t.app, 'GET', `${NS}/secret.stuff`, admin);
      expect(still.json()).toMatchObject({ enabled: true });
      const listed = await send(t.app, 'GET', NS, rivalAdmin);
      expect(listed.json().items.map((n: Namespace) => n.name)).toEqual(['orders']);
    });

    it('refuses non-admin users with 403 before reading the body', async () => {
      for (const [method, url] of [
        ['POST', NS],
        ['GET', NS],
        ['GET', `${NS}/orders`],
        ['PUT', `${NS}/orders`],
        ['DELETE', `${NS}/orders`],
        ['GET', '/api/v1/wal/audit'],
      ] as const) {
        const response = await send(
          t.app,
          method,
          url,
          staff,
          method === 'POST' || method === 'PUT' ? { bogus: 1 } : undefined,
        );
        expect(response.statusCode, `${method} ${url}`).toBe(403);
        expect(response.json()).toMatchObject({ code: 'FORBIDDEN' });
      }
    });

    it('refuses API keys, even with wal:write, and anonymous callers', async () => {
      const key = await send(t.app, 'POST', '/api/v1/api-keys', admin, {
        name: 'writer',
        permissions: ['wal:write'],
        namespaces: ['*'],
      });
      expect(key.statusCode).toBe(201);
      const response = await send(t.app, 'GET', NS, { 'x-api-key': key.json().key });
      expect(response.statusCode).toBe(403);
      expect((await send(t.app, 'GET', NS, {})).statusCode).toBe(401);
    });
  });

  describe('validation', () => {
    const errorsOf = async (body: Record<string, unknown>, method: 'POST' | 'PUT' = 'POST', url = NS) => {
      const response = await send(t.app, method, url, admin, body);
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().code).toBe('VALIDATION_FAILED');
      return response.json().errors as { in: string; pointer: string; message: string }[];
    };
    const pointers = async (body: Record<string, unknown>, method: 'POST' | 'PUT' = 'POST', url = NS) =>
      (await errorsOf(body, method, url)).map((e) => e.pointer).sort();

    it('names a bad name, backend, retry strategy, jitter and unknown field', async () => {
      expect(
        await pointers({
          name: 'Bad Name',
          backend: 'kafka',
          retry: { strategy: 'random', jitter: 2 },
          maxPayloadBytes: 0,
          consumerConcurrency: 1000,
          colour: 'red',
        }),
      ).toEqual(
        [
          '/backend',
          '/colour',
          '/consumerConcurrency',
          '/maxPayloadBytes',
          '/name',
          '/retry/jitter',
          '/retry/strategy',
        ].sort(),
      );
    });

    it('names a fallback equal to the backend, a retry max below its base and a schema that does not compile', async () => {
      const errors = await errorsOf({
        name: 'semantic',
        backend: 'nats-jetstream',
        fallbackBackend: 'nats-jetstream',
        retry: { baseDelayMs: 5000, maxDelayMs: 1000 },
        payloadSchema: { type: 'nope' },
      });
      expect(errors.map((e) => e.pointer).sort()).toEqual([
        '/fallbackBackend',
        '/payloadSchema',
        '/retry/maxDelayMs',
      ]);
      expect(errors.every((e) => e.in === 'body')).toBe(true);
      expect(errors.find((e) => e.pointer === '/payloadSchema')?.message).toMatch(/JSON Schema/);
    });

    it('accepts draft-07 and 2020-12 payload schemas, and the same $id twice', async () => {
      const draft2020 = {
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $id: 'https://schemas.test/order.json',
        type: 'object',
        properties: {
          sku: { type: 'string', format: 'uuid' },
          items: { prefixItems: [{ type: 'integer' }] },
        },
      };
      expect((await create({ name: 'schema.2020', payloadSchema: draft2020 })).statusCode).toBe(201);
      expect((await create({ name: 'schema.again', payloadSchema: draft2020 })).statusCode).toBe(201);
      const draft07 = {
        $schema: 'http://json-schema.org/draft-07/schema#',
        type: 'array',
        items: { type: 'number' },
      };
      expect((await create({ name: 'schema.07', payloadSchema: draft07 })).statusCode).toBe(201);
      const cleared = await send(t.app, 'PUT', `${NS}/schema.07`, admin, { payloadSchema: null });
      expect(cleared.json().payloadSchema).toBeNull();
      for (const name of ['schema.2020', 'schema.again', 'schema.07'])
        await send(t.app, 'DELETE', `${NS}/${name}`, admin);
    });

    it('names a payload schema with an unresolvable $ref', async () => {
      expect(
        await pointers({ name: 'refs', payloadSchema: { $ref: 'https://elsewhere.test/s.json' } }),
      ).toEqual(['/payloadSchema']);
    });

    it('names every bad field of every target', async () => {
      expect(
        await pointers({
          name: 'targets',
          allowedHosts: ['hooks.example.com'],
          targets: [
            { type: 'http', name: 'a', url: 'ftp://hooks.example.com/x', secret: 'nope', timeoutMs: 5 },
            {
              type: 'http',
              name: 'b',
              url: 'https://evil.test/x',
              secret: SECRET,
              headers: { 'bad header': 'x' },
            },
            { type: 'redis', name: 'c', command: 'DEL', key: '  ', message: 7 },
            { type: 'redis', name: 'd', command: 'FLUSHALL', key: '' },
            { type: 'redis', name: 'e', command: 'PUBLISH', key: 'chan' },
            { type: 'internal', name: 'f', handler: '' },
            { type: 'internal', name: 'f', handler: 'ok.handler' },
            { type: 'carrier-pigeon', name: 'g' },
            { type: 'internal', name: 'Bad!', handler: 'x', extra: true },
          ],
        }),
      ).toEqual(
        [
          '/targets/0/url',
          '/targets/0/secret',
          '/targets/0/timeoutMs',
          '/targets/1/url',
          '/targets/1/headers/bad header',
          '/targets/2/key',
          '/targets/2/message',
          '/targets/3/command',
          '/targets/3/key',
          '/targets/4/message',
          '/targets/5/handler',
          '/targets/6/name',
          '/targets/7/type',
          '/targets/8/name',
          '/targets/8/extra',
        ].sort(),
      );
    });

    it('refuses an HTTP target with more than MAX_TARGET_HEADERS headers or MAX_TARGET_HEADER_BYTES of them, which every delivery would send', async () => {
      const target = (headers: Record<string, string>) => ({
        type: 'http',
        name: 'hook',
        url: 'https://hooks.example.com/in',
        secret: SECRET,
        headers,
      });
      const many = Object.fromEntries(
        Array.from({ length: MAX_TARGET_HEADERS + 1 }, (_, i) => [`x-h${i}`, 'v']),
      );
      const big = Object.fromEntries(Array.from({ length: 3 }, (_, i) => [`x-big${i}`, 'v'.repeat(8192)]));
      for (const headers of [many, big]) {
        const errors = await errorsOf({ name: 'headers', targets: [target(headers)] });
        expect(errors).toEqual([
          expect.objectContaining({ in: 'body', pointer: '/targets/0/headers', message: expect.any(String) }),
        ]);
      }
      expect((await send(t.app, 'GET', `${NS}/headers`, admin)).statusCode).toBe(404);
      const fits = {
        'x-a': 'v'.repeat(MAX_TARGET_HEADER_BYTES / 2 - 3),
        'x-b': 'v'.repeat(MAX_TARGET_HEADER_BYTES / 2 - 3),
      };
      expect((await create({ name: 'headers', targets: [target(fits)] })).statusCode).toBe(201);
      expect(
        (await send(t.app, 'PUT', `${NS}/headers`, admin, { targets: [target({ ...fits, 'x-c': 'v' })] }))
          .statusCode,
      ).toBe(400);
      await send(t.app, 'DELETE', `${NS}/headers`, admin);
    });

    it('requires the secret of a new HTTP target', async () => {
      expect(
        await pointers({
          name: 'nosecret',
          targets: [{ type: 'http', name: 'hook', url: 'https://h.test/' }],
        }),
      ).toEqual(['/targets/0/secret']);
    });

    it('refuses a secret longer than 128 base64 characters (Standard Webhooks secrets are 24 to 64 bytes)', async () => {
      const target = (secret: string) => ({ type: 'http', name: 'hook', url: 'https://h.test/', secret });
      expect(await pointers({ name: 'longsecret', targets: [target(`whsec_${'A'.repeat(129)}`)] })).toEqual([
        '/targets/0/secret',
      ]);
      const fits = await create({ name: 'longsecret', targets: [target(`whsec_${'A'.repeat(128)}`)] });
      expect(fits.statusCode, fits.body).toBe(201);
      await send(t.app, 'DELETE', `${NS}/longsecret`, admin);
    });

    it('checks a PUT against the stored settings', async () => {
      expect(await pointers({ retry: { baseDelayMs: 400000 } }, 'PUT', `${NS}/orders`)).toEqual([
        '/retry/maxDelayMs',
      ]);
      expect(await pointers({ fallbackBackend: 'postgres' }, 'PUT', `${NS}/orders`)).toEqual([
        '/fallbackBackend',
      ]);
    });

    it('stores nothing when validation fails', async () => {
      await errorsOf({ name: 'never', retry: { baseDelayMs: 5000, maxDelayMs: 1000 } });
      expect((await send(t.app, 'GET', `${NS}/never`, admin)).statusCode).toBe(404);
    });
  });

  describe('HTTP target secrets', () => {
    const hook = {
      type: 'http',
      name: 'hook',
      url: 'https://hooks.example.com/in',
      secret: SECRET,
      timeoutMs: 2000,
    };

    it('masks the secret in every answer and keeps it when a PUT omits it', async () => {
      const created = await create({ name: 'webhooks', targets: [hook] });
      expect(created.statusCode).toBe(201);
      expect(created.body).not.toContain(SECRET);
      expect(created.json().targets[0].secret).toBe(`whsec_…${SECRET.slice(-4)}`);
      for (const url of [NS, `${NS}/webhooks`]) {
        const read = await send(t.app, 'GET', url, admin);
        expect(read.body).not.toContain(SECRET);
        expect(read.body).toContain(`whsec_…${SECRET.slice(-4)}`);
      }
      const { secret: _omitted, ...withoutSecret } = hook;
      const updated = await send(t.app, 'PUT', `${NS}/webhooks`, admin, {
        targets: [{ ...withoutSecret, url: 'https://hooks.example.com/v2' }],
      });
      expect(updated.statusCode, updated.body).toBe(200);
      expect(updated.body).not.toContain(SECRET);
      const stored = await withSystem(wal.db, (trx) =>
        trx
          .selectFrom('wal.namespaces')
          .select('targets')
          .where('name', '=', 'webhooks')
          .executeTakeFirstOrThrow(),
      );
      // Stored sealed (AES-256-GCM under the secrets key): a database reader never finds it.
      expect(JSON.stringify(stored)).not.toContain(SECRET);
      const targets = (
        typeof stored.targets === 'string' ? JSON.parse(stored.targets) : stored.targets
      ) as Target[];
      expect(targets[0]).toMatchObject({
        url: 'https://hooks.example.com/v2',
        secret: { sealed: expect.stringMatching(/^v1\./) },
      });
      const place = { tenantId: shop.id, namespace: 'webhooks' };
      const [opened] = await openTargets(secretBoxOf(t.ctx), place, targets);
      expect(opened).toMatchObject({ url: 'https://hooks.example.com/v2', secret: SECRET });
    });

    it('keeps the secret when a PUT sends back the masked value, and replaces it when sent a new one', async () => {
      const read = (await send(t.app, 'GET', `${NS}/webhooks`, admin)).json();
      expect((await send(t.app, 'PUT', `${NS}/webhooks`, admin, { targets: read.targets })).statusCode).toBe(
        200,
      );
      const openedTarget = async () => {
        const namespace = await wal.namespaces.get(shop.id, 'webhooks');
        const place = { tenantId: shop.id, namespace: 'webhooks' };
        return (await openTargets(secretBoxOf(t.ctx), place, namespace?.targets ?? []))[0];
      };
      expect(await openedTarget()).toMatchObject({ secret: SECRET });
      await send(t.app, 'PUT', `${NS}/webhooks`, admin, { targets: [{ ...hook, secret: OTHER_SECRET }] });
      await eventually(async () => {
        const target = await openedTarget();
        return target?.type === 'http' && target.secret === OTHER_SECRET;
      });
    });

    it('never writes a secret into the audit log', async () => {
      const rows = await withSystem(wal.db, (trx) =>
        trx
          .selectFrom('wal.audit_log')
          .select('details')
          .where('subject', '=', 'namespace:webhooks')
          .execute(),
      );
      expect(rows.length).toBeGreaterThanOrEqual(3);
      const text = JSON.stringify(rows);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(OTHER_SECRET);
    });
    it('refuses a URL carrying credentials (user:password@), which answers and the audit log would show in clear', async () => {
      const password = 'hunter2-webhook-password';
      for (const url of [
        `https://alice:${password}@hooks.example.com/in`,
        'https://alice@hooks.example.com/in',
        `https://:${password}@hooks.example.com/in`,
      ]) {
        const refused = await create({ name: 'userinfo', targets: [{ ...hook, url }] });
        expect(refused.statusCode, url).toBe(400);
        expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(refused.json()).toMatchObject({
          code: 'VALIDATION_FAILED',
          errors: [{ in: 'body', pointer: '/targets/0/url', message: expect.stringMatching(/credentials/) }],
        });
        expect(refused.body).not.toContain(password);
      }
      expect((await send(t.app, 'GET', `${NS}/userinfo`, admin)).statusCode).toBe(404);
      const changed = await send(t.app, 'PUT', `${NS}/webhooks`, admin, {
        targets: [{ ...hook, url: `https://alice:${password}@hooks.example.com/in` }],
      });
      expect(changed.statusCode).toBe(400);
      expect(
        JSON.stringify(await send(t.app, 'GET', `${NS}/webhooks`, admin).then((r) => r.json())),
      ).not.toContain(password);
    });
  });

  describe('audit', () => {
    it('records who created, changed and deleted a namespace, newest first, in pages', async () => {
      await create({ name: 'audited' });
      await send(t.app, 'PUT', `${NS}/audited`, admin, { enabled: false });
      await send(t.app, 'DELETE', `${NS}/audited`, admin);
      const page = await send(t.app, 'GET', '/api/v1/wal/audit?limit=2', admin);
      expect(page.statusCode).toBe(200);
      const { items, nextCursor } = page.json();
      expect(items.map((i: { action: string }) => i.action)).toEqual([
        'namespace.deleted',
        'namespace.updated',
      ]);
      expect(items[1]).toMatchObject({
        actor: `user:${shop.adminId}`,
        subject: 'namespace:audited',
        details: { changes: { enabled: { from: true, to: false } } },
      });
      expect(Object.keys(items[1].details.changes)).toEqual(['enabled']);
      expect(nextCursor).toEqual(expect.any(String));
      const next = (await send(t.app, 'GET', `/api/v1/wal/audit?limit=2&cursor=${nextCursor}`, admin)).json();
      expect(next.items[0]).toMatchObject({
        action: 'namespace.created',
        actor: `user:${shop.adminId}`,
        details: { after: expect.objectContaining({ name: 'audited', backend: 'postgres' }) },
      });
    });

    it('shows a tenant only its own audit entries and rejects a forged cursor', async () => {
      const rivalLog = (await send(t.app, 'GET', '/api/v1/wal/audit?limit=100', rivalAdmin)).json();
      expect(rivalLog.items.map((i: { subject: string }) => i.subject)).toEqual(['namespace:orders']);
      const forged = await send(t.app, 'GET', '/api/v1/wal/audit?cursor=bm9wZQ', admin);
      expect(forged.statusCode).toBe(400);
      expect(forged.json().errors).toEqual([expect.objectContaining({ in: 'query', pointer: '/cursor' })]);
    });
  });

  describe('cache', () => {
    it('serves every tenant from system context and caches misses and hits', async () => {
      expect((await wal.namespaces.get(shop.id, 'orders'))?.name).toBe('orders');
      expect((await wal.namespaces.get(rival.id, 'orders'))?.tenantId).toBe(rival.id);
      expect(await wal.namespaces.get(rival.id, 'payments.events')).toBeUndefined();
      expect((wal.namespaces as unknown as { size: number }).size).toBeGreaterThanOrEqual(3);
    });

    it('sees a change made through the API', async () => {
      expect((await wal.namespaces.get(shop.id, 'orders'))?.maxPayloadBytes).toBe(262144);
      await send(t.app, 'PUT', `${NS}/orders`, admin, { maxPayloadBytes: 2048 });
      await eventually(async () => (await wal.namespaces.get(shop.id, 'orders'))?.maxPayloadBytes === 2048);
    });

    it('peeks without reading: only what get() cached, and nothing once a change dropped it', async () => {
      const before = (await wal.namespaces.get(shop.id, 'orders'))?.maxPayloadBytes;
      expect(wal.namespaces.peek(shop.id, 'orders')?.maxPayloadBytes).toBe(before);
      expect(wal.namespaces.peek(shop.id, 'never.read')).toBeUndefined();
      expect(before).not.toBe(4096);
      await send(t.app, 'PUT', `${NS}/orders`, admin, { maxPayloadBytes: 4096 });
      // Dropped (or already read again by the delivery engine): never the old value.
      await eventually(async () => wal.namespaces.peek(shop.id, 'orders')?.maxPayloadBytes !== before);
      expect((await wal.namespaces.get(shop.id, 'orders'))?.maxPayloadBytes).toBe(4096);
      // Kept once a read did not overlap a change (the change's NOTIFY may still be on its way).
      await eventually(async () => {
        await wal.namespaces.get(shop.id, 'orders');
        return wal.namespaces.peek(shop.id, 'orders')?.maxPayloadBytes === 4096;
      });
    });

    it('remembers a namespace read elsewhere, unless a change was heard after the mark', async () => {
      const stored = (await wal.namespaces.get(shop.id, 'orders'))!;
      wal.namespaces.invalidate(shop.id, 'orders');
      expect(wal.namespaces.peek(shop.id, 'orders')).toBeUndefined();
      const stale = wal.namespaces.mark();
      wal.namespaces.invalidate(shop.id, 'other.change');
      wal.namespaces.remember(stale, shop.id, 'orders', stored);
      expect(wal.namespaces.peek(shop.id, 'orders')).toBeUndefined();
      wal.namespaces.remember(wal.namespaces.mark(), shop.id, 'orders', stored);
      expect(wal.namespaces.peek(shop.id, 'orders')?.name).toBe('orders');
    });

    it('sees a change made in SQL behind the API, and a namespace created in SQL', async () => {
      await wal.namespaces.get(shop.id, 'orders');
      await wal.namespaces.get(shop.id, 'from.sql');
      await withTenant(wal.db, shop.id, async (trx) => {
        await sql`update wal.namespaces set consumer_concurrency = 17 where name = 'orders'`.execute(trx);
        await sql`insert into wal.namespaces (tenant_id, name) values (${shop.id}, 'from.sql')`.execute(trx);
      });
      await eventually(async () => (await wal.namespaces.get(shop.id, 'orders'))?.consumerConcurrency === 17);
      await eventually(async () => (await wal.namespaces.get(shop.id, 'from.sql')) !== undefined);
    });

    it('lists every enabled namespace of every tenant in all(), following changes', async () => {
      const names = async () =>
        (await wal.namespaces.all()).map((n) => `${n.tenantId === shop.id ? 'A' : 'B'}:${n.name}`);
      expect(await names()).toEqual(expect.arrayContaining(['A:orders', 'B:orders', 'A:webhooks']));
      expect(await names()).not.toContain('A:payments.events'); // created disabled
      await send(t.app, 'PUT', `${NS}/payments.events`, admin, { enabled: true });
      await eventually(async () => (await names()).includes('A:payments.events'));
      await send(t.app, 'DELETE', `${NS}/payments.events`, admin);
      await eventually(async () => !(await names()).includes('A:payments.events'));
    });

    // Two processes on one PostgreSQL: a change through one reaches the other's cache.
    it.runIf(testDatabaseKind() === 'postgres')('sees a change made by another process', async () => {
      let other!: ReturnType<typeof walModule>;
      const second = await startSecondProcess(t.databaseUrl!, {
        modules: async (ctx) => {
          other = walModule(ctx);
          return [other.module];
        },
      });
      const app = second.app;
      try {
        expect((await wal.namespaces.get(shop.id, 'orders'))?.enabled).toBe(true);
        const otherAdmin = await bearer({ ...t, app }, shop.slug, shop.adminEmail);
        const changed = await send(app, 'PUT', `${NS}/orders`, otherAdmin, { enabled: false });
        expect(changed.statusCode).toBe(200);
        await eventually(async () => (await wal.namespaces.get(shop.id, 'orders'))?.enabled === false);
        // and the other way round
        expect((await other.deps.namespaces.get(shop.id, 'orders'))?.enabled).toBe(false);
        await send(t.app, 'PUT', `${NS}/orders`, admin, { enabled: true });
        await eventually(async () => (await other.deps.namespaces.get(shop.id, 'orders'))?.enabled === true);
      } finally {
        await second.close();
      }
    });
  });

  describe('canWriteNamespace', () => {
    const key = (permissions: string[], namespaces?: string[]): Principal => ({
      kind: 'apiKey',
      tenantId: shop.id,
      tenantSlug: shop.slug,
      apiKeyId: 'k',
      permissions,
      ...(namespaces ? { namespaces } : {}),
    });
    const user = (role: 'admin' | 'staff'): Principal => ({
      kind: 'user',
      tenantId: shop.id,
      tenantSlug: shop.slug,
      userId: 'u',
      role,
      sessionId: 's',
    });

    it('allows admins, and keys holding wal:write and the namespace or *', () => {
      expect(canWriteNamespace(user('admin'), 'orders')).toBe(true);
      expect(canWriteNamespace(key(['wal:write'], ['orders']), 'orders')).toBe(true);
      expect(canWriteNamespace(key(['orders:read', 'wal:write'], ['*']), 'anything')).toBe(true);
    });

    it('refuses other users, keys without wal:write and keys for other namespaces', () => {
      expect(canWriteNamespace(user('staff'), 'orders')).toBe(false);
      expect(canWriteNamespace(key(['orders:read'], ['orders']), 'orders')).toBe(false);
      expect(canWriteNamespace(key(['wal:write'], ['payments']), 'orders')).toBe(false);
      expect(canWriteNamespace(key(['wal:write']), 'orders')).toBe(false);
    });

    it('reads the namespaces of a real API key', async () => {
      const created = (
        await send(t.app, 'POST', '/api/v1/api-keys', admin, {
          name: 'orders-writer',
          permissions: ['wal:write'],
          namespaces: ['orders'],
        })
      ).json();
      const principal = await t.identity.authenticate({ kind: 'apiKey', token: created.key });
      expect(canWriteNamespace(principal, 'orders')).toBe(true);
      expect(canWriteNamespace(principal, 'payments')).toBe(false);
      const bare = (
        await send(t.app, 'POST', '/api/v1/api-keys', admin, { name: 'bare', permissions: ['wal:write'] })
      ).json();
      expect(
        canWriteNamespace(await t.identity.authenticate({ kind: 'apiKey', token: bare.key }), 'orders'),
      ).toBe(false);
    });
  });
});
