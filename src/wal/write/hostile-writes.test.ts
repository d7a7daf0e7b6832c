import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { addUser, bearer } from '../../identity/users/user-test-fixtures.ts';
import type { AppContext } from '../../platform/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createGroupCommitter, type GroupCommitter } from '../backends/postgres/group-commit.ts';
import type { WalDeps } from '../deps.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import type { WalTables } from '../tables.ts';
import { writeRoutes } from './index.ts';
import { addNamespace, countMessages } from './write-test-fixtures.ts';

const WRITE = '/api/v1/wal/write';
const BATCH = '/api/v1/wal/write/batch';

type Problem = { code: string; detail: string; errors?: { in: string; pointer: string; message: string }[] };

function walModule(ctx: AppContext) {
  const db = ctx.db.kysely as Kysely<WalTables>;
  const deps: WalDeps = { ctx, db, namespaces: createNamespaceCache(ctx, db), streams: new Map() };
  const committer: GroupCommitter = createGroupCommitter(db);
  return {
    name: 'wal-write-test',
    routes: async (app: FastifyInstance) => {
      await app.register(writeRoutes(deps, { committer }));
    },
    start: () => deps.namespaces.start(),
    stop: async () => {
      await committer.close();
      await deps.namespaces.stop();
    },
  };
}

const problem = (response: LightMyRequestResponse, status: number, code: string) => {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = response.json<Problem>();
  expect(body.code).toBe(code);
  return body;
};

/** Attacks on the WAL write path found by hand: each answered 500, or stored something else, once. */
describe('hostile WAL writes', () => {
  let t: TestApp;
  let shop: TestTenant;
  let rival: TestTenant;
  let admin: Record<string, string>;
  let rivalAdmin: Record<string, string>;
  let customer: Record<string, string>;
  let ordersKey: Record<string, string>;
  let readOnlyKey: Record<string, string>;

  /** Sends text as it is: JSON.stringify could not write a lone surrogate escape or 1e309. */
  const raw = (url: string, body: string | Buffer, headers: Record<string, string> = admin) =>
    t.app.inject({
      method: 'POST',
      url,
      headers: { ...headers, 'content-type': 'application/json' },
      payload: body,
    });

  const apiKey = async (permissions: string[], namespaces: string[]) => {
    const response = await post(t.app, '/api/v1/api-keys', { name: 'key', permissions, namespaces }, admin);
    expect(response.statusCode, response.body).toBe(201);
    return { 'x-api-key': response.json<{ key: string }>().key };
  };

  beforeAll(async () => {
    t = await startTestApp({}, { modules: async (ctx) => [walModule(ctx)] });
    shop = await createTestTenant(t, 'hostile-a');
    rival = await createTestTenant(t, 'hostile-b');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    rivalAdmin = {
      authorization: `Bearer ${(await login(t.app, rival.slug, rival.adminEmail)).accessToken}`,
    };
    await addUser(t, shop.id, 'ann@hostile-a.test', 'customer');
    customer = await bearer(t, shop.slug, 'ann@hostile-a.test');
    for (const name of ['deep', 'unicode', 'numbers', 'batch', 'big', 'orders', 'payments']) {
      await addNamespace(t, shop.id, name);
    }
    ordersKey = await apiKey(['wal:write'], ['orders']);
    readOnlyKey = await apiKey(['orders:read'], ['orders']);
  });
  afterAll(() => t.close());

  describe('JSON nested deeper than 64 levels', () => {
    it('refuses a payload nested 10,000 deep with 400 JSON_TOO_DEEP and stores nothing', async () => {
      for (const payload of [
        `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
        `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`,
      ]) {
        const body = problem(
          await raw(WRITE, `{"namespace":"deep","payload":${payload}}`),
          400,
          'JSON_TOO_DEEP',
        );
        expect(body.errors?.[0]).toMatchObject({
          in: 'body',
          pointer: expect.stringMatching(/^\/payload\//),
        });
      }
      expect(await countMessages(t, shop.id, 'deep')).toBe(0);
    });

    it('accepts a body exactly 64 levels deep and names the 65th level by its pointer', async () => {
      // The body is level 1 and the payload level 2: 62 more arrays inside make 64.
      const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
      const accepted = await raw(WRITE, `{"namespace":"deep","payload":{"a":${nested(62)}}}`);
      expect(accepted.statusCode, accepted.body).toBe(202);
      const refused = problem(
        await raw(WRITE, `{"namespace":"deep","payload":{"a":${nested(63)}}}`),
        400,
        'JSON_TOO_DEEP',
      );
      expect(refused.errors).toEqual([
        {
          in: 'body',
          pointer: `/payload/a${'/0'.repeat(62)}`,
          message: 'must not nest deeper than 64 levels',
        },
      ]);
      expect(await countMessages(t, shop.id, 'deep')).toBe(1);
    });
  });

  describe('lone UTF-16 surrogates', () => {
    it('refuses one escaped in a payload value, a payload key, the ordering key or a header value, naming it', async () => {
      const cases: [string, string][] = [
        ['{"namespace":"unicode","payload":{"note":"a\\ud800b"}}', '/payload/note'],
        ['{"namespace":"unicode","payload":{"\\udfff":1}}', '/payload/\udfff'],
        ['{"namespace":"unicode","payload":["ok","\\ud83d"]}', '/payload/1'],
        ['{"namespace":"unicode","payload":{},"key":"\\ud800"}', '/key'],
        ['{"namespace":"unicode","payload":{},"headers":{"x-note":"\\udc00x"}}', '/headers/x-note'],
      ];
      for (const [text, pointer] of cases) {
        const body = problem(await raw(WRITE, text), 400, 'INVALID_UNICODE');
        expect(body.errors, text).toEqual([
          { in: 'body', pointer, message: 'must not contain a lone UTF-16 surrogate' },
        ]);
      }
      // A well-formed pair is one character, not a lone half.
      const pair = await raw(WRITE, '{"namespace":"unicode","payload":{"smile":"\\ud83d\\ude00"}}');
      expect(pair.statusCode, pair.body).toBe(202);
      expect(await countMessages(t, shop.id, 'unicode')).toBe(1);
    });

    it('refuses one sent raw (bytes ED A0 80, not UTF-8) instead of storing U+FFFD in its place', async () => {
      const head = '{"namespace":"unicode","payload":{"note":"a';
      const body = Buffer.concat([Buffer.from(head), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}}')]);
      const refused = problem(await raw(WRITE, body), 400, 'INVALID_UNICODE');
      const message = `must be valid UTF-8 (byte ${head.length} is not)`;
      expect(refused.errors).toEqual([{ in: 'body', pointer: '', message }]);
      expect(await countMessages(t, shop.id, 'unicode')).toBe(1);
    });
  });

  it('refuses 1e309 and -1e309, which JavaScript reads as Infinity and would store as null, with 400 NUMBER_OUT_OF_RANGE', async () => {
    for (const number of ['1e309', '-1e309', '123e999']) {
      const body = problem(
        await raw(WRITE, `{"namespace":"numbers","payload":{"total":${number}}}`),
        400,
        'NUMBER_OUT_OF_RANGE',
      );
      expect(body.errors).toEqual([
        { in: 'body', pointer: '/payload/total', message: 'must be a number a 64-bit float can hold' },
      ]);
    }
    // The largest double is fine.
    const largest = await raw(WRITE, '{"namespace":"numbers","payload":{"total":1.7976931348623157e308}}');
    expect(largest.statusCode, largest.body).toBe(202);
    expect(await countMessages(t, shop.id, 'numbers')).toBe(1);
  });

  it('writes nothing of a batch when one message holds bad JSON values, and names its index', async () => {
    const good = '{"payload":{"n":1}}';
    for (const [bad, code, pointer] of [
      ['{"payload":{"n":1e309}}', 'NUMBER_OUT_OF_RANGE', '/messages/2/payload/n'],
      ['{"payload":{"n":"\\ud800"}}', 'INVALID_UNICODE', '/messages/2/payload/n'],
      [
        `{"payload":${'['.repeat(100)}${']'.repeat(100)}}`,
        'JSON_TOO_DEEP',
        expect.stringMatching(/^\/messages\/2\/payload/),
      ],
    ] as const) {
      const text = `{"namespace":"batch","messages":[${good},${good},${bad},${good}]}`;
      const body = problem(await raw(BATCH, text), 400, code);
      expect(body.errors?.[0]).toMatchObject({ in: 'body', pointer });
    }
    expect(await countMessages(t, shop.id, 'batch')).toBe(0);
  });

  describe('permission before the body', () => {
    /** A batch of the given size in MiB, valid JSON with plausible messages. */
    const batchOf = (mebibytes: number) => {
      const message = `{"payload":{"pad":"${'x'.repeat(1000)}"}}`;
      const count = Math.ceil((mebibytes * 1024 * 1024) / (message.length + 1));
      return `{"namespace":"big","messages":[${Array.from({ length: count }, () => message).join(',')}]}`;
    };

    it("refuses a customer's 30 MiB batch with 403 before reading it", async () => {
      const body = batchOf(30);
      expect(Buffer.byteLength(body)).toBeGreaterThan(30 * 1024 * 1024);
      problem(await raw(BATCH, body, customer), 403, 'FORBIDDEN');
      // Past the route's own 32 MiB limit too: a 413 would mean the body was being read.
      problem(await raw(BATCH, batchOf(33), customer), 403, 'FORBIDDEN');
      // And broken JSON: a 400 would mean it was parsed.
      problem(await raw(BATCH, '{"namespace":', customer), 403, 'FORBIDDEN');
      problem(await raw(WRITE, '{"namespace":', readOnlyKey), 403, 'FORBIDDEN');
      expect(await countMessages(t, shop.id, 'big')).toBe(0);
    });

    it('still reads the body of a credential that may write some namespace, then decides on its name', async () => {
      problem(await raw(WRITE, '{"namespace":', ordersKey), 400, 'MALFORMED_BODY');
      problem(await post(t.app, WRITE, { namespace: 'payments', payload: {} }, ordersKey), 403, 'FORBIDDEN');
    });
  });

  describe('reading a message', () => {
    const get = (id: string, headers: Record<string, string>, query = '') =>
      t.app.inject({ url: `/api/v1/wal/messages/${encodeURIComponent(id)}${query}`, headers });

    it("answers 404 for another namespace's or another tenant's message, exactly as for a missing one", async () => {
      const written = await post(
        t.app,
        WRITE,
        { namespace: 'payments', payload: {}, messageId: 'pay-1' },
        admin,
      );
      expect(written.statusCode, written.body).toBe(202);
      expect((await get('pay-1', admin)).statusCode).toBe(200);
      const missing = problem(await get('no-such-id', ordersKey), 404, 'NOT_FOUND');
      const hidden = problem(await get('pay-1', ordersKey), 404, 'NOT_FOUND');
      const hiddenByName = problem(await get('pay-1', ordersKey, '?namespace=payments'), 404, 'NOT_FOUND');
      const otherTenant = problem(await get('pay-1', rivalAdmin), 404, 'NOT_FOUND');
      expect(hidden.detail).toBe(missing.detail.replace('no-such-id', 'pay-1'));
      expect(hiddenByName.detail).toBe(hidden.detail);
      expect(otherTenant.detail).toBe(hidden.detail);
      // A credential that may read no namespace at all is refused before anything is looked up.
      problem(await get('pay-1', readOnlyKey), 403, 'FORBIDDEN');
      problem(await get('pay-1', customer), 403, 'FORBIDDEN');
    });
  });
});
