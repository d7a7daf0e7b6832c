import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { completeMessages, leaseMessages } from '../backends/postgres/queue.ts';
import type { WalTables } from '../tables.ts';
import {
  deliverInternalOnly,
  eventually,
  insertMessage,
  insertNamespace,
  loadNamespaceWithSql,
  messageRow,
} from './delivery-test-fixtures.ts';
import {
  createDeliveryEngine,
  type DeadLetterEvent,
  type DeliveryEngine,
  PermanentDeliveryError,
} from './index.ts';
import { DEFER_FROM_MS } from './ready-hints.ts';

let t: TestApp;
let db: Kysely<WalTables>;
let tenant: TestTenant;
let engine: DeliveryEngine | undefined;
let nsCounter = 0;

beforeAll(async () => {
  t = await startTestApp();
  db = t.ctx.db.kysely;
  tenant = await createTestTenant(t, 'delivery');
});

afterEach(async () => {
  await engine?.stop();
  engine = undefined;
  // Each test's namespace stops here, so later engines never lease its leftovers.
  await sql`update wal.namespaces set enabled = false`.execute(db);
});

afterAll(async () => {
  await t.close();
});

function startEngine(
  options: {
    leaseMs?: number;
    onDeadLetter?: (e: DeadLetterEvent) => void;
    db?: Kysely<WalTables>;
    safetyPollMs?: number;
  } = {},
) {
  engine = createDeliveryEngine({
    ctx: t.ctx,
    db,
    loadNamespace: (tenantId, name) => loadNamespaceWithSql(db, tenantId, name),
    deliver: deliverInternalOnly,
    batchSize: 16,
    ...options,
  });
  return engine;
}

async function namespace(handlers: string[], options: Parameters<typeof insertNamespace>[4] = {}) {
  const name = `ns-${++nsCounter}`;
  await insertNamespace(db, tenant.id, name, handlers, options);
  return name;
}

async function stateOf(id: string, state: string) {
  const row = await messageRow(db, id);
  return row?.state === state ? row : undefined;
}

async function attemptRows(id: string) {
  const { rows } = await sql<{ attempt: number; target: string; outcome: string; error: string | null }>`
    select attempt, target, outcome, error from wal.attempts where message_pk = ${id} order by attempt`.execute(
    db,
  );
  return rows;
}

describe('delivery engine', () => {
  it('should deliver a written message to an internal handler once, inside the inbox transaction', async () => {
    const e = startEngine();
    const seen: unknown[] = [];
    e.registerHandler('h1', async (trx, delivery) => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from wal.inbox where message_pk = ${delivery.deliveryId}`.execute(trx);
      seen.push({ payload: delivery.payload, inboxRows: rows[0]?.n, attempt: delivery.attempt });
    });
    await e.start();
    const ns = await namespace(['h1']);
    const id = await insertMessage(db, tenant.id, ns, { order: 1 });
    const row = await eventually(() => stateOf(id, 'delivered'));
    expect(row.targets_done).toEqual(['h1']);
    expect(seen).toEqual([{ payload: { order: 1 }, inboxRows: 1, attempt: 1 }]);
    expect(await attemptRows(id)).toEqual([{ attempt: 1, target: 'h1', outcome: 'delivered', error: null }]);
  });

  it('should never deliver a delayed message before its due time', async () => {
    const e = startEngine();
    let delivered = 0;
    e.registerHandler('later', async () => {
      delivered++;
    });
    await e.start();
    const ns = await namespace(['later']);
    const id = await insertMessage(db, tenant.id, ns, {}, { dueInMs: 1500 });
    // While the database says the message is not yet due, it must not have been delivered.
    for (;;) {
      const { rows } = await sql<{ due: boolean }>`
        select due_at <= now() as due from wal.messages where id = ${id}`.execute(db);
      if (rows[0]?.due) break;
      expect(delivered).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await eventually(() => stateOf(id, 'delivered'));
    const { rows } = await sql<{ ok: boolean }>`
      select delivered_at >= due_at as ok from wal.messages where id = ${id}`.execute(db);
    expect(rows[0]?.ok).toBe(true);
    expect(delivered).toBe(1);
  });

  it('should retry a message whose handler failed, then deliver it', async () => {
    const e = startEngine();
    let calls = 0;
    e.registerHandler('flaky', async () => {
      calls++;
      if (calls <= 2) throw new Error(`boom ${calls}`);
    });
    await e.start();
    const ns = await namespace(['flaky']);
    const id = await insertMessage(db, tenant.id, ns, {});
    const row = await eventually(() => stateOf(id, 'delivered'));
    expect(row.attempts).toBe(3);
    expect(await attemptRows(id)).toEqual([
      { attempt: 1, target: 'flaky', outcome: 'failed', error: 'boom 1' },
      { attempt: 2, target: 'flaky', outcome: 'failed', error: 'boom 2' },
      { attempt: 3, target: 'flaky', outcome: 'delivered', error: null },
    ]);
  });

  it('should move a message out of attempts to the dead letters and publish it', async () => {
    const dead: DeadLetterEvent[] = [];
    const e = startEngine({ onDeadLetter: (event) => void dead.push(event) });
    e.registerHandler('broken', async () => {
      throw new Error('always broken');
    });
    await e.start();
    const ns = await namespace(['broken']);
    const id = await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 3, messageId: 'm-exhausted' });
    const row = await eventually(() => stateOf(id, 'dead'));
    expect(row.attempts).toBe(3);
    expect(row.last_error).toBe('broken: always broken');
    expect((await attemptRows(id)).map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed']);
    await eventually(async () => (dead.length > 0 ? true : undefined));
    expect(dead).toEqual([
      {
        type: 'wal.message.dead-lettered',
        tenantId: tenant.id,
        namespace: ns,
        messageId: 'm-exhausted',
        deliveryId: id,
        attempts: 3,
        error: 'broken: always broken',
      },
    ]);
  });

  it('should dead-letter a non-retryable failure at once', async () => {
    const e = startEngine();
    e.registerHandler('reject', async () => {
      throw new PermanentDeliveryError('malformed order');
    });
    await e.start();
    const ns = await namespace(['reject']);
    const id = await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 10 });
    const row = await eventually(() => stateOf(id, 'dead'));
    expect(row.attempts).toBe(1);
    expect(await attemptRows(id)).toEqual([
      { attempt: 1, target: 'reject', outcome: 'dead', error: 'malformed order' },
    ]);
  });

  it('should deliver messages with the same key in order, even with concurrency 8', async () => {
    const e = startEngine();
    const order: number[] = [];
    e.registerHandler('ordered', async (_trx, delivery) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
      order.push((delivery.payload as { n: number }).n);
    });
    const ns = await namespace(['ordered'], { concurrency: 8 });
    const ids: string[] = [];
    for (let n = 0; n < 20; n++) ids.push(await insertMessage(db, tenant.id, ns, { n }, { key: 'cart-1' }));
    // Unkeyed messages alongside may go in parallel; they must not disturb the keyed ones.
    for (let n = 100; n < 110; n++) await insertMessage(db, tenant.id, ns, { n });
    await e.start();
    await eventually(async () => ((await stateOf(ids[19] as string, 'delivered')) ? true : undefined));
    expect(order.filter((n) => n < 100)).toEqual(Array.from({ length: 20 }, (_, n) => n));
  });

  it('should keep delivering while one slow message holds its slot, and wait for it on stop', async () => {
    const e = startEngine();
    let release: (() => void) | undefined;
    const slowDone = new Promise<void>((resolve) => {
      release = resolve;
    });
    const delivered: number[] = [];
    e.registerHandler(
      'mixed',
      async (_trx, delivery) => {
        const n = (delivery.payload as { n: number }).n;
        if (n === 0) await slowDone;
        delivered.push(n);
      },
      { inbox: false },
    ); // no transaction held open while it waits (PGlite has one connection)
    const ns = await namespace(['mixed'], { concurrency: 4 });
    const slow = await insertMessage(db, tenant.id, ns, { n: 0 });
    // More than one lease's worth (batchSize 16): later leases must not wait for the slow one.
    const ids: string[] = [];
    for (let n = 1; n <= 40; n++) ids.push(await insertMessage(db, tenant.id, ns, { n }));
    await e.start();
    await eventually(async () => {
      for (const id of ids) if (!(await stateOf(id, 'delivered'))) return undefined;
      return true;
    });
    expect(await messageRow(db, slow)).toMatchObject({ state: 'delivering' });
    const stopped = e.stop();
    release?.();
    await stopped;
    expect(await messageRow(db, slow)).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(delivered.sort((a, b) => a - b)).toEqual(Array.from({ length: 41 }, (_, n) => n));
  });

  it('should redeliver a message whose consumer died holding the lease, without a second effect', async () => {
    const ns = await namespace(['effect']);
    const id = await insertMessage(db, tenant.id, ns, { once: true });
    const e = startEngine();
    let effects = 0;
    e.registerHandler('effect', async () => {
      effects++;
    });
    // A consumer leases with a short lease, runs the handler, and dies before completing.
    const [leased] = await leaseMessages(db, { limit: 1, leaseMs: 150 });
    expect(leased?.id).toBe(id);
    const first = await e.dispatchInternal('effect', {
      deliveryId: id,
      messageId: id,
      tenantId: tenant.id,
      namespace: ns,
      key: null,
      payload: { once: true },
      headers: {},
      attempt: 1,
      createdAt: new Date(),
    });
    expect(first).toEqual({ outcome: 'delivered' });
    expect(effects).toBe(1);
    await e.start();
    const row = await eventually(() => stateOf(id, 'delivered'));
    expect(row.attempts).toBe(2);
    expect(effects).toBe(1);
  });

  it('should deliver again after the lease of a crashed consumer expires', async () => {
    const ns = await namespace(['after-crash']);
    const id = await insertMessage(db, tenant.id, ns, {});
    const crashed = await leaseMessages(db, { limit: 1, leaseMs: 100 });
    expect(crashed.map((m) => m.id)).toEqual([id]);
    const e = startEngine();
    let calls = 0;
    e.registerHandler('after-crash', async () => {
      calls++;
    });
    await e.start();
    await eventually(() => stateOf(id, 'delivered'));
    expect(calls).toBe(1);
    // The crashed consumer's late completion is fenced off.
    const late = await completeMessages(db, [
      { id, leaseToken: (crashed[0] as { leaseToken: string }).leaseToken, targetsDone: [] },
    ]);
    expect(late).toEqual({ updated: [], stale: [id] });
  });

  it('should share the queue between two consumers without handing a message to both', async () => {
    const ns = await namespace(['shared'], { concurrency: 4 });
    const calls = new Map<string, number>();
    const consumers = [
      startEngine(),
      createDeliveryEngine({
        ctx: t.ctx,
        db,
        loadNamespace: (tenantId, name) => loadNamespaceWithSql(db, tenantId, name),
        deliver: deliverInternalOnly,
        batchSize: 4,
      }),
    ];
    for (const consumer of consumers) {
      consumer.registerHandler('shared', async (_trx, delivery) => {
        calls.set(delivery.deliveryId, (calls.get(delivery.deliveryId) ?? 0) + 1);
      });
    }
    const ids: string[] = [];
    for (let n = 0; n < 40; n++) ids.push(await insertMessage(db, tenant.id, ns, { n }));
    try {
      await Promise.all(consumers.map((c) => c.start()));
      await eventually(async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from wal.messages where namespace = ${ns} and state = 'delivered'`.execute(
          db,
        );
        return rows[0]?.n === 40 ? true : undefined;
      });
    } finally {
      await consumers[1]?.stop();
    }
    expect(ids.map((id) => calls.get(id))).toEqual(ids.map(() => 1));
  });

  it('should keep the lease of a handler slower than the lease, so no other consumer takes the message', async () => {
    const ns = await namespace(['slow'], { concurrency: 1 });
    const calls: string[] = [];
    const options = {
      ctx: t.ctx,
      db,
      loadNamespace: (tenantId: string, name: string) => loadNamespaceWithSql(db, tenantId, name),
      deliver: deliverInternalOnly,
      leaseMs: 300,
    };
    const consumers = [startEngine({ leaseMs: 300 }), createDeliveryEngine(options)];
    for (const consumer of consumers) {
      consumer.registerHandler(
        'slow',
        async (_trx, delivery) => {
          calls.push(delivery.deliveryId);
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        },
        { inbox: false },
      );
    }
    const id = await insertMessage(db, tenant.id, ns, {});
    try {
      await Promise.all(consumers.map((c) => c.start()));
      const row = await eventually(() => stateOf(id, 'delivered'));
      expect(row.attempts).toBe(1);
    } finally {
      await consumers[1]?.stop();
    }
    expect(calls).toEqual([id]);
  });

  it('should run a handler registered without an inbox at least once, with no transaction', async () => {
    const e = startEngine();
    const seen: unknown[] = [];
    e.registerHandler(
      'plain',
      async (trx, delivery) => {
        seen.push([trx, delivery.payload]);
      },
      { inbox: false },
    );
    const ns = await namespace(['plain']);
    const id = await insertMessage(db, tenant.id, ns, { plain: true });
    await e.start();
    await eventually(() => stateOf(id, 'delivered'));
    expect(seen).toEqual([[undefined, { plain: true }]]);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from wal.inbox where message_pk = ${id}`.execute(db);
    expect(rows[0]?.n).toBe(0);
  });

  it('should skip the handler when the same delivery is dispatched twice', async () => {
    const e = startEngine();
    let effects = 0;
    e.registerHandler('twice', async () => {
      effects++;
    });
    const ns = await namespace(['twice']);
    const id = await insertMessage(db, tenant.id, ns, {});
    const delivery = {
      deliveryId: id,
      messageId: id,
      tenantId: tenant.id,
      namespace: ns,
      key: null,
      payload: {},
      headers: {},
      attempt: 1,
      createdAt: new Date(),
    };
    const results = await Promise.all([
      e.dispatchInternal('twice', delivery),
      e.dispatchInternal('twice', delivery),
    ]);
    expect(results).toEqual([{ outcome: 'delivered' }, { outcome: 'delivered' }]);
    expect(effects).toBe(1);
  });

  it('should run deliveries to one handler that arrive together in one transaction, a failing one failing alone', async () => {
    const e = startEngine();
    const transactions = new Map<string, string>();
    e.registerHandler('together', async (trx, delivery) => {
      const { rows } = await sql<{ tx: string }>`select txid_current()::text as tx`.execute(trx);
      transactions.set(String((delivery.payload as { n: number }).n), rows[0]!.tx);
      if ((delivery.payload as { n: number }).n === 3) throw new Error('three is refused');
    });
    const ns = await namespace(['together']);
    const deliveries = await Promise.all(
      [0, 1, 2, 3, 4].map(async (n) => {
        const id = await insertMessage(db, tenant.id, ns, { n });
        return {
          deliveryId: id,
          messageId: id,
          tenantId: tenant.id,
          namespace: ns,
          key: null,
          payload: { n },
          headers: {},
          attempt: 1,
          createdAt: new Date(),
        };
      }),
    );
    // The first and the last twice: a duplicate in the same batch runs once.
    const results = await Promise.all(
      [...deliveries, deliveries[0]!].map((d) => e.dispatchInternal('together', d)),
    );
    expect(results.map((r) => r.outcome)).toEqual([
      'delivered',
      'delivered',
      'delivered',
      'retry',
      'delivered',
      'delivered',
    ]);
    expect(results[3]).toMatchObject({ error: 'three is refused' });
    const { rows } = await sql<{ pk: string }>`
      select message_pk::text as pk from wal.inbox where consumer = 'together'`.execute(db);
    expect(rows.map((r) => r.pk).sort()).toEqual([0, 1, 2, 4].map((n) => deliveries[n]!.deliveryId).sort());
    // The batch failed on 3 and was rolled back; each then ran alone, in a transaction of its own.
    expect(new Set(transactions.values()).size).toBe(5);

    transactions.clear();
    const more = await Promise.all(
      [5, 6, 7].map(async (n) => {
        const id = await insertMessage(db, tenant.id, ns, { n });
        return { ...deliveries[0]!, deliveryId: id, messageId: id, payload: { n } };
      }),
    );
    const again = await Promise.all(more.map((d) => e.dispatchInternal('together', d)));
    expect(again.every((r) => r.outcome === 'delivered')).toBe(true);
    expect(new Set(transactions.values()).size).toBe(1);
  });

  it('should roll back the inbox record when the handler fails, so the retry runs it', async () => {
    const e = startEngine();
    let calls = 0;
    e.registerHandler('rollback', async (trx) => {
      calls++;
      await sql`select 1`.execute(trx);
      if (calls === 1) throw new Error('first fails');
    });
    const ns = await namespace(['rollback']);
    const id = await insertMessage(db, tenant.id, ns, {});
    await e.start();
    await eventually(() => stateOf(id, 'delivered'));
    expect(calls).toBe(2);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from wal.inbox where message_pk = ${id}`.execute(db);
    expect(rows[0]?.n).toBe(1);
  });
});

describe('NOTIFY mercato_wal_ready', () => {
  /** The payloads of mercato_wal_ready that arrive while `fn` runs (and a moment after). */
  async function payloadsOf(fn: () => Promise<unknown>): Promise<string[]> {
    const payloads: string[] = [];
    const unlisten = await t.ctx.db.listen('mercato_wal_ready', (payload) => payloads.push(payload));
    try {
      await fn();
      await eventually(async () => (payloads.length > 0 ? true : undefined));
      return payloads;
    } finally {
      await unlisten();
    }
  }

  it('says how many milliseconds until the earliest message the statement wrote falls due', async () => {
    const ns = await namespace(['h']);
    const later = await payloadsOf(() => insertMessage(db, tenant.id, ns, { n: 1 }, { dueInMs: 30_000 }));
    expect(later).toHaveLength(1);
    expect(Number(later[0])).toBeGreaterThan(25_000);
    expect(Number(later[0])).toBeLessThanOrEqual(30_000);
    expect(await payloadsOf(() => insertMessage(db, tenant.id, ns, { n: 2 }))).toEqual(['0']);
  });

  it('lets the engine deliver a message written for later at its due time, with no lease in between', async () => {
    // Only this namespace is open, so nothing else wakes the engine while it waits.
    await sql`update wal.namespaces set enabled = false`.execute(db);
    const ns = await namespace(['h']);
    let leases = 0;
    const counted = db.withPlugin({
      transformQuery({ node }) {
        if (JSON.stringify(node).includes('held_by_tenant as')) leases += 1;
        return node;
      },
      async transformResult({ result }) {
        return result;
      },
    });
    // No safety poll within the test: only a timer armed for the message can find it in time.
    const e = startEngine({ db: counted, safetyPollMs: 600_000 });
    const seen: string[] = [];
    e.registerHandler('h', async (_trx, delivery) => {
      seen.push(delivery.messageId);
    });
    await e.start();
    await eventually(async () => (leases > 0 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const idle = leases;

    const id = await insertMessage(db, tenant.id, ns, { n: 1 }, { dueInMs: DEFER_FROM_MS + 500 });
    await new Promise((resolve) => setTimeout(resolve, DEFER_FROM_MS));
    expect((await messageRow(db, id))?.state).toBe('scheduled');
    expect(leases).toBe(idle);

    await eventually(() => stateOf(id, 'delivered'), 200);
    expect(seen).toEqual([id]);
    const { rows } = await sql<{ early: boolean }>`
      select delivered_at < due_at as early from wal.messages where id = ${id}`.execute(db);
    expect(rows[0]?.early).toBe(false);
  });
});
