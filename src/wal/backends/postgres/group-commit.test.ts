import { sql } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../../identity/auth/auth-test-fixtures.ts';
import { withSystem } from '../../../platform/db/index.ts';
import { AppError } from '../../../platform/http/index.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../../../platform/testing/index.ts';
import { addNamespace, countMessages, messageRow, walDb } from '../../write/write-test-fixtures.ts';
import { createGroupCommitter, insertMessageRows, type NewMessageRow } from './group-commit.ts';

describe('group commit (postgres backend)', () => {
  let t: TestApp;
  let shop: TestTenant;
  let other: TestTenant;

  /** Inserts row in a transaction of its own and holds it open, uncommitted, until commit(). */
  async function insertUncommitted(row: NewMessageRow): Promise<{ commit(): Promise<void> }> {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let inserted = () => {};
    const ready = new Promise<void>((resolve) => {
      inserted = resolve;
    });
    const transaction = walDb(t)
      .transaction()
      .execute(async (trx) => {
        await insertMessageRows(trx, [row]);
        inserted();
        await held;
      });
    await Promise.race([ready, transaction]);
    return {
      commit: () => {
        release();
        return transaction;
      },
    };
  }

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'gc-a');
    other = await createTestTenant(t, 'gc-b');
    await addNamespace(t, shop.id, 'orders');
    await addNamespace(t, other.id, 'orders');
  });
  afterAll(() => t.close());

  it('lets 200 concurrent writers share a few INSERTs and commits', async () => {
    const flushes: { rows: number; submissions: number }[] = [];
    const committer = createGroupCommitter(walDb(t), { onFlush: (f) => flushes.push(f) });
    const ids = Array.from({ length: 200 }, (_, i) => `shared-${i}`);
    // Writers arrive over several ticks, as HTTP requests do.
    const results = await Promise.all(
      ids.map(async (id, i) => {
        if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
        return committer.submit([messageRow(i % 2 ? shop.id : other.id, 'orders', id)]);
      }),
    );
    expect(results.every(([o]) => o?.replayed === false)).toBe(true);
    const stats = committer.stats();
    expect(stats.submissions).toBe(200);
    expect(stats.flushes).toBe(flushes.length);
    expect(stats.flushes).toBeLessThanOrEqual(20);
    expect(flushes.reduce((n, f) => n + f.rows, 0)).toBe(200);
    expect(Math.max(...flushes.map((f) => f.submissions))).toBeGreaterThan(1);
    expect(await countMessages(t, shop.id, 'orders')).toBeGreaterThanOrEqual(100);
    await committer.close();
  });

  it('wakes consumers and the relay only for rows that wait for delivery', async () => {
    const heard: string[] = [];
    const arrived: Record<string, () => void> = {};
    const listen = (channel: string) =>
      t.ctx.db.listen(channel, () => {
        heard.push(channel);
        arrived[channel]?.();
      });
    const stops = [await listen('mercato_wal_ready'), await listen('mercato_wal_relay')];
    const insert = (state: 'delivered' | 'dead' | 'pending', backend: 'postgres' | 'redis-streams') =>
      withSystem(walDb(t), (trx) =>
        insertMessageRows(trx, [
          { ...messageRow(shop.id, 'orders', `wake-${state}-${backend}`), state, backend },
        ]),
      );
    const next = (channel: string) => new Promise<void>((resolve) => (arrived[channel] = resolve));
    try {
      // Notifications come in commit order: had the first insert notified, it would be heard first.
      await insert('delivered', 'postgres');
      let woken = next('mercato_wal_ready');
      await insert('pending', 'postgres');
      await woken;
      await insert('dead', 'redis-streams');
      woken = next('mercato_wal_relay');
      await insert('pending', 'redis-streams');
      await woken;
      expect(heard).toEqual(['mercato_wal_ready', 'mercato_wal_relay']);
    } finally {
      for (const stop of stops) await stop();
    }
  });

  it('lands 1,000 concurrent writes exactly once, replaying duplicates of the same body', async () => {
    const committer = createGroupCommitter(walDb(t));
    const before = await countMessages(t, shop.id);
    // Every id is written twice at once: 2,000 submissions, 1,000 messages.
    const submissions = Array.from({ length: 2000 }, (_, i) =>
      committer.submit([messageRow(shop.id, 'orders', `once-${i % 1000}`, `h-${i % 1000}`)]),
    );
    const outcomes = (await Promise.all(submissions)).flat();
    expect(await countMessages(t, shop.id)).toBe(before + 1000);
    expect(outcomes.filter((o) => o.replayed)).toHaveLength(1000);
    // Both writers of an id got the same stored message.
    expect(outcomes[0]!.message.id).toBe(outcomes[1000]!.message.id);
    expect(committer.stats().flushes).toBeLessThan(100);
    await committer.close();
  });

  it('rejects only the submission whose messageId exists with another body, writing none of it', async () => {
    const committer = createGroupCommitter(walDb(t));
    await committer.submit([messageRow(shop.id, 'orders', 'taken', 'first')]);
    const [good, bad] = await Promise.allSettled([
      committer.submit([messageRow(shop.id, 'orders', 'good-1')]),
      committer.submit([
        messageRow(shop.id, 'orders', 'bad-new'),
        messageRow(shop.id, 'orders', 'taken', 'second'),
      ]),
    ]);
    expect(good.status).toBe('fulfilled');
    expect(bad.status).toBe('rejected');
    const error = (bad as PromiseRejectedResult).reason as AppError;
    expect(error).toBeInstanceOf(AppError);
    expect(error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(error.extras['messageIds']).toEqual(['taken']);
    const ids = await walDb(t)
      .selectFrom('wal.messages')
      .select('message_id')
      .where('message_id', 'in', ['good-1', 'bad-new', 'taken'])
      .execute();
    expect(ids.map((r) => r.message_id).sort()).toEqual(['good-1', 'taken']);
    await committer.close();
  });

  it('fails only the bad submission when a flush transaction fails', async () => {
    const committer = createGroupCommitter(walDb(t));
    const results = await Promise.allSettled([
      committer.submit([messageRow(shop.id, 'orders', 'fine-1')]),
      // No such namespace: the namespace check fails the whole INSERT; alone, that submission is a 404.
      committer.submit([messageRow(shop.id, 'no-such-namespace', 'doomed')]),
      committer.submit([messageRow(other.id, 'orders', 'fine-2')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'NOT_FOUND',
      message: 'namespace no-such-namespace not found',
    });
    expect(committer.stats().flushes).toBeGreaterThanOrEqual(2);
    expect(await countMessages(t, shop.id, 'orders')).toBeGreaterThan(0);
    const doomed = await walDb(t)
      .selectFrom('wal.messages')
      .select('id')
      .where('message_id', '=', 'doomed')
      .execute();
    expect(doomed).toHaveLength(0);
    await committer.close();
  });

  it('caps a flush at maxBatch rows', async () => {
    const flushes: number[] = [];
    const committer = createGroupCommitter(walDb(t), { maxBatch: 10, onFlush: (f) => flushes.push(f.rows) });
    await Promise.all(
      Array.from({ length: 35 }, (_, i) => committer.submit([messageRow(shop.id, 'orders', `capped-${i}`)])),
    );
    expect(Math.max(...flushes)).toBeLessThanOrEqual(10);
    expect(flushes.reduce((a, b) => a + b, 0)).toBe(35);
    await committer.close();
    await expect(committer.submit([messageRow(shop.id, 'orders', 'late')])).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
    });
  });

  // PGlite has one connection: two flush transactions cannot overlap there.
  it.runIf(testDatabaseKind() === 'postgres')(
    'commits the writes behind a flush that waits on a lock, and then that flush too',
    async () => {
      const committer = createGroupCommitter(walDb(t), { maxInFlight: 2 });
      // Another transaction holds messageId `locked` uncommitted: a flush writing it waits for it.
      const holder = await insertUncommitted(messageRow(shop.id, 'orders', 'locked', 'same'));
      const waiting = committer.submit([messageRow(shop.id, 'orders', 'locked', 'same')]);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [free] = await committer.submit([messageRow(shop.id, 'orders', 'free-of-the-lock')]);
      expect(free?.replayed).toBe(false);
      let settled = false;
      void waiting.finally(() => {
        settled = true;
      });
      expect(settled).toBe(false);
      await holder.commit();
      const [locked] = await waiting;
      expect(locked?.replayed).toBe(true);
      await committer.close();
    },
  );

  it('keeps the key of a namespace that still has messages', async () => {
    await addNamespace(t, shop.id, 'keyed');
    const rename = () =>
      withSystem(walDb(t), (trx) =>
        trx
          .updateTable('wal.namespaces')
          .set({ name: 'renamed' })
          .where('tenant_id', '=', shop.id)
          .where('name', '=', 'keyed')
          .execute(),
      );
    await withSystem(walDb(t), (trx) => insertMessageRows(trx, [messageRow(shop.id, 'keyed', 'k-1')]));
    await expect(rename()).rejects.toMatchObject({ code: '23503' });
    await withSystem(walDb(t), (trx) =>
      trx
        .deleteFrom('wal.messages')
        .where('tenant_id', '=', shop.id)
        .where('namespace', '=', 'keyed')
        .execute(),
    );
    await rename();
  });

  it('stores a batch of objects, as the previous version sent it during a rolling upgrade, as it stores arrays', async () => {
    const now = new Date().toISOString();
    const legacy = [
      {
        s: 0,
        id: uuidv7(),
        tenant_id: shop.id,
        namespace: 'orders',
        message_id: 'legacy-1',
        ordering_key: 'k',
        payload: { a: 1 },
        headers: { 'ce-type': 't.legacy' },
        request_hash: 'h1',
        backend: 'postgres',
        state: 'pending',
        due_at: now,
        max_attempts: 3,
        created_at: now,
      },
      {
        s: 0,
        id: uuidv7(),
        tenant_id: shop.id,
        namespace: 'orders',
        message_id: 'legacy-2',
        ordering_key: null,
        payload: null,
        headers: {},
        request_hash: 'h2',
        backend: 'postgres',
        state: 'delivered',
        due_at: now,
        max_attempts: 3,
        created_at: now,
        targets_done: ['erp'],
        attempts: 1,
      },
    ];
    const answer = await withSystem(walDb(t), async (trx) => {
      const { rows } = await sql<{ r: { fresh: string[] } | string }>`
        select wal.insert_messages(${JSON.stringify(legacy)}::jsonb) as r`.execute(trx);
      const r = rows[0]!.r;
      return typeof r === 'string' ? (JSON.parse(r) as { fresh: string[] }) : r;
    });
    expect([...answer.fresh].sort()).toEqual(legacy.map((m) => m.id).sort());
    const stored = await withSystem(walDb(t), (trx) =>
      trx
        .selectFrom('wal.messages')
        .select([
          'message_id',
          'ordering_key',
          'payload',
          'headers',
          'state',
          'max_attempts',
          'targets_done',
          'attempts',
        ])
        .where('tenant_id', '=', shop.id)
        .where('message_id', 'in', ['legacy-1', 'legacy-2'])
        .orderBy('message_id')
        .execute(),
    );
    expect(stored).toEqual([
      {
        message_id: 'legacy-1',
        ordering_key: 'k',
        payload: { a: 1 },
        headers: { 'ce-type': 't.legacy' },
        state: 'pending',
        max_attempts: 3,
        targets_done: [],
        attempts: 0,
      },
      {
        message_id: 'legacy-2',
        ordering_key: null,
        payload: null,
        headers: {},
        state: 'delivered',
        max_attempts: 3,
        targets_done: ['erp'],
        attempts: 1,
      },
    ]);
  });

  // PGlite has one connection: the two transactions cannot overlap there.
  it.runIf(testDatabaseKind() === 'postgres')(
    'deletes with a namespace the messages a write committed while the delete waited for it',
    async () => {
      await addNamespace(t, shop.id, 'doomed');
      // A write inserted its message (and checked the namespace) but has not committed yet.
      const writer = await insertUncommitted(messageRow(shop.id, 'doomed', 'in-flight'));
      const deleting = withSystem(walDb(t), (trx) =>
        trx
          .deleteFrom('wal.namespaces')
          .where('tenant_id', '=', shop.id)
          .where('name', '=', 'doomed')
          .execute(),
      );
      let deleted = false;
      void deleting.then(() => {
        deleted = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The delete waits for the write, as it did behind the foreign key.
      expect(deleted).toBe(false);
      await writer.commit();
      await deleting;
      expect(await countMessages(t, shop.id, 'doomed')).toBe(0);
      // And a write after the delete fails instead of leaving a message without its namespace.
      await expect(
        withSystem(walDb(t), (trx) => insertMessageRows(trx, [messageRow(shop.id, 'doomed', 'late')])),
      ).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'namespace doomed not found' });
    },
  );
});
