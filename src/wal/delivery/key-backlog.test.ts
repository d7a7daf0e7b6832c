import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../../platform/testing/index.ts';
import type { WalTables } from '../tables.ts';
import {
  deliverInternalOnly,
  eventually,
  insertMessages,
  insertNamespace,
  loadNamespaceWithSql,
} from './delivery-test-fixtures.ts';
import { createDeliveryEngine, type DeliveryEngine } from './index.ts';

// A backlog waiting behind one ordering key, through the consumer: the lease parks what waits
// (backends/postgres/lease-ctes.ts), and each outcome frees the next message of its key.

let t: TestApp;
let db: Kysely<WalTables>;
let shop: TestTenant;
let other: TestTenant;
let engines: DeliveryEngine[] = [];
let nsCounter = 0;

beforeAll(async () => {
  t = await startTestApp();
  db = t.ctx.db.kysely;
  shop = await createTestTenant(t, 'backlog');
  other = await createTestTenant(t, 'neighbour');
});

afterEach(async () => {
  await Promise.all(engines.map((e) => e.stop()));
  engines = [];
  await sql`update wal.namespaces set enabled = false`.execute(db);
});

afterAll(async () => {
  await t.close();
});

type Delivered = { key: string | null; n: number };

/** A consumer as the WAL runs it (a lease of at most 16 here, so a backlog of 300 is far past it). */
function startEngine(handler: (message: Delivered) => Promise<void>) {
  const engine = createDeliveryEngine({
    ctx: t.ctx,
    db,
    loadNamespace: (tenantId, name) => loadNamespaceWithSql(db, tenantId, name),
    deliver: deliverInternalOnly,
    batchSize: 16,
  });
  engine.registerHandler('record', (_trx, delivery) => handler(delivery.payload as Delivered), {
    inbox: false,
  });
  engines.push(engine);
  return engine;
}

async function namespace(tenantId: string, concurrency = 4) {
  const name = `backlog-${++nsCounter}`;
  await insertNamespace(db, tenantId, name, ['record'], { concurrency, maxAttempts: 1_000 });
  return name;
}

const byKey = (list: Delivered[], key: string) => list.filter((d) => d.key === key).map((d) => d.n);
const upTo = (count: number) => Array.from({ length: count }, (_, n) => n);

describe('a backlog behind one ordering key', () => {
  // 300 messages of one key go out one after another: on a loaded machine that takes a while.
  it("holds back neither its namespace's other keys nor another tenant, and goes out in order once its head passes", {
    timeout: 90_000,
  }, async () => {
    let open = false;
    const delivered: Delivered[] = [];
    const e = startEngine(async (message) => {
      if (message.key === 'stuck' && message.n === 0 && !open) throw new Error('target down');
      delivered.push(message);
    });
    const ns = await namespace(shop.id);
    const neighbour = await namespace(other.id);
    await insertMessages(
      db,
      shop.id,
      ns,
      upTo(300).map((n) => ({ key: 'stuck', n })),
      1_000,
    );
    await insertMessages(
      db,
      shop.id,
      ns,
      upTo(30).map((n) => ({ key: `k${n % 3}`, n })),
    );
    await insertMessages(
      db,
      other.id,
      neighbour,
      upTo(30).map((n) => ({ n })),
    );
    await e.start();

    await eventually(async () => (delivered.length >= 60 ? true : undefined));
    expect(byKey(delivered, 'stuck')).toEqual([]);
    for (const key of ['k0', 'k1', 'k2'])
      expect(byKey(delivered, key)).toEqual(upTo(30).filter((n) => `k${n % 3}` === key));
    expect(delivered.filter((d) => d.key === null).length).toBe(30);

    open = true;
    await eventually(async () => (byKey(delivered, 'stuck').length >= 300 ? true : undefined), 1_200);
    expect(byKey(delivered, 'stuck')).toEqual(upTo(300));
    // Each outcome is recorded after its handler ran: the last ones a moment later.
    await eventually(async () => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from wal.messages where tenant_id = ${shop.id} and namespace = ${ns}
          and (state <> 'delivered' or parked_due_at is not null)`.execute(db);
      return rows[0]?.n === 0 ? true : undefined;
    });
  });

  // PostgreSQL: PGlite's one connection would make the two consumers take turns.
  it.runIf(testDatabaseKind() === 'postgres')(
    'keeps every key in order with two consumers and a flaky target, the backlog far past a lease',
    { timeout: 90_000 },
    async () => {
      const delivered: Delivered[] = [];
      let calls = 0;
      const handler = async (message: Delivered) => {
        // Every fifth call fails: each key's messages wait behind a retry now and then.
        if (++calls % 5 === 0) throw new Error('flaky');
        delivered.push(message);
      };
      const engines = [startEngine(handler), startEngine(handler)];
      const ns = await namespace(shop.id, 8);
      await insertMessages(
        db,
        shop.id,
        ns,
        upTo(600).map((i) => ({ key: `key-${i % 20}`, n: Math.floor(i / 20) })),
      );
      await Promise.all(engines.map((e) => e.start()));
      await eventually(async () => (delivered.length >= 600 ? true : undefined), 2_400);
      for (let k = 0; k < 20; k++) expect(byKey(delivered, `key-${k}`)).toEqual(upTo(30));
    },
  );
});
