import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, testDatabaseKind, testRedisUrl } from '../../platform/testing/index.ts';
import { SQL_NEEDS_POSTGRES, type Target } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import { createTargets, type Delivery, type InternalDispatch, type Targets } from './index.ts';
import { testDelivery, testNamespace } from './test-fixtures.ts';

let testApp: TestApp;
let targets: Targets;
let server: Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  const redisUrl = testRedisUrl();
  // The operator opens the loopback receiver; createTargets reads it from ctx.config.
  testApp = await startTestApp({
    MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1',
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  });
  targets = createTargets({ ctx: testApp.ctx, db: testApp.ctx.db.kysely as Kysely<WalTables> });
  server = createServer((req, res) => {
    hits += 1;
    req.resume().on('end', () => res.writeHead(200).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await targets.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await testApp.close();
});

const namespace = testNamespace();

describe('createTargets', () => {
  it('delivers to an http target', async () => {
    const target: Target = {
      type: 'http',
      name: 'hook',
      enabled: true,
      url: `http://127.0.0.1:${port}/`,
      secret: `whsec_${Buffer.from('k'.repeat(32)).toString('base64')}`,
      timeoutMs: 2000,
    };
    expect(await targets.deliver(namespace, target, testDelivery())).toEqual({
      outcome: 'delivered',
      statusCode: 200,
    });
    expect(hits).toBe(1);
  });

  const sqlTarget: Target = {
    type: 'sql',
    name: 'probe',
    enabled: true,
    statement: 'select $1::text',
    params: ['/key'],
  };

  // sql targets run on PostgreSQL only (PGlite's one session is the superuser's).
  it.runIf(testDatabaseKind() === 'postgres')('runs a sql target on the Mercato database', async () => {
    expect(await targets.deliver(namespace, sqlTarget, testDelivery())).toEqual({ outcome: 'delivered' });
    const bad: Target = { ...sqlTarget, statement: 'selec 1', params: [] };
    expect((await targets.deliver(namespace, bad, testDelivery())).outcome).toBe('dead');
  });

  // The PGlite half of the test above: there the context's database kind refuses the statement.
  it.runIf(testDatabaseKind() === 'pglite')('sends a sql target to the dead letters on PGlite', async () => {
    expect(await targets.deliver(namespace, sqlTarget, testDelivery())).toEqual({
      outcome: 'dead',
      error: SQL_NEEDS_POSTGRES,
    });
  });

  it.skipIf(!testRedisUrl())(
    'runs a redis target through the context’s Redis, under the tenant’s prefix',
    async () => {
      const key = `mercato-test:targets-index:${process.pid}`;
      const touched = `${testApp.ctx.config.redisPrefix}t:${testDelivery().tenantId}:${key}`;
      await testApp.ctx.redis!.set(touched, '1');
      const target: Target = { type: 'redis', name: 'cache', enabled: true, command: 'DEL', key };
      expect(await targets.deliver(namespace, target, testDelivery())).toEqual({ outcome: 'delivered' });
      expect(await testApp.ctx.redis!.exists(touched)).toBe(0);
    },
  );

  it('sends an internal target without a dispatcher to the dead letters', async () => {
    const target: Target = {
      type: 'internal',
      name: 'inventory',
      enabled: true,
      handler: 'inventory.reserve',
    };
    expect(await targets.deliver(namespace, target, testDelivery())).toEqual({
      outcome: 'dead',
      error: 'no handler "inventory.reserve"',
    });
  });

  it('hands an internal target to the dispatcher and returns its result; a throwing handler is retried', async () => {
    const target: Target = {
      type: 'internal',
      name: 'inventory',
      enabled: true,
      handler: 'inventory.reserve',
    };
    const calls: [string, Delivery][] = [];
    const dispatch: InternalDispatch = async (handler, delivery) => {
      calls.push([handler, delivery]);
      return { outcome: 'delivered' };
    };
    const delivery = testDelivery();
    expect(await targets.deliver(namespace, target, delivery, dispatch)).toEqual({ outcome: 'delivered' });
    expect(calls).toEqual([['inventory.reserve', delivery]]);
    const throwing: InternalDispatch = async () => {
      throw new Error('stock service down');
    };
    expect(await targets.deliver(namespace, target, delivery, throwing)).toEqual({
      outcome: 'retry',
      error: 'target inventory failed: stock service down',
    });
  });
});
