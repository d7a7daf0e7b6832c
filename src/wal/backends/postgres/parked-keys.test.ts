import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../../platform/testing/index.ts';
import { insertMessage, insertMessages, insertNamespace } from '../../delivery/delivery-test-fixtures.ts';
import { createWal } from '../../index.ts';
import type { WalTables } from '../../tables.ts';
import { type LeaseOptions, leaseCtes, PARK_SLACK } from './lease-ctes.ts';
import { rowsReadBy } from './plan-rows-test-fixtures.ts';
import { completeMessages, failMessages, leaseMessages, recordAndLease } from './queue.ts';
import type { LeasedMessage } from './queue-types.ts';

// Messages waiting behind an earlier message of their ordering key: a lease reads a bounded
// number of them, sets aside those it read, and each message's outcome frees the next of its key.

let t: TestApp;
let db: Kysely<WalTables>;
let tenant: TestTenant;
let nsCounter = 0;
const HOUR = 3_600_000;
const LIMIT = 10;

beforeAll(async () => {
  // The WAL's routes and metrics, and no consumer: the tests lease by hand.
  t = await startTestApp(
    { MERCATO_WAL_DELIVERY: 'false' },
    { modules: async (ctx) => [await createWal(ctx)] },
  );
  db = t.ctx.db.kysely;
  tenant = await createTestTenant(t, 'parked-keys');
});

afterAll(async () => {
  await t.close();
});

async function freshNamespace() {
  await sql`update wal.namespaces set enabled = false`.execute(db);
  const name = `pk-${++nsCounter}`;
  await insertNamespace(db, tenant.id, name, ['h']);
  return name;
}

/** `count` messages of `key`, due already, in this order. */
const insertFollowers = (ns: string, key: string, count: number) =>
  insertMessages(
    db,
    tenant.id,
    ns,
    Array.from({ length: count }, (_, n) => ({ key, n })),
  );

/** A message of `key` leased and failed with a retry an hour ahead: its key's later messages wait. */
async function stuckHead(ns: string, key: string): Promise<string> {
  const head = await insertMessage(db, tenant.id, ns, {}, { key });
  const leased = await leaseMessages(db, { limit: 1, leaseMs: 60_000 });
  expect(leased.map((m) => m.id)).toEqual([head]);
  const token = leased[0]?.leaseToken as string;
  await failMessages(db, [
    { id: head, leaseToken: token, error: 'down', retryAfterMs: HOUR, targetsDone: [] },
  ]);
  return head;
}

/** Due messages a lease statement reads (its scans of the messages_due… indexes). */
const rowsReadByLease = (options: LeaseOptions) =>
  rowsReadBy(db, sql`with recursive ${leaseCtes(options)} select count(*) from leased`, 'messages_due');

/**
 * Leases (recording nothing) until `wanted` all came out and a lease parked nothing more, at most
 * `max` times; answers the leases it took (Infinity past `max`) and what they leased.
 */
async function leaseUntil(
  wanted: string[],
  max: number,
): Promise<{ leases: number; leased: LeasedMessage[] }> {
  const leased: LeasedMessage[] = [];
  for (let leases = 1; leases <= max; leases++) {
    const cycle = await recordAndLease(db, { completions: [], failures: [], limit: LIMIT, leaseMs: 60_000 });
    leased.push(...cycle.messages);
    if (cycle.parked === 0 && wanted.every((id) => leased.some((m) => m.id === id)))
      return { leases, leased };
  }
  return { leases: Number.POSITIVE_INFINITY, leased };
}

async function parkedOf(ids: string[]): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from wal.messages where id = any(${ids}::uuid[]) and parked_due_at is not null`.execute(
    db,
  );
  return rows[0]?.n ?? 0;
}

describe('messages waiting behind their ordering key', () => {
  it('a lease reads a bounded number of rows, however many messages wait behind one key', async () => {
    const ns = await freshNamespace();
    await stuckHead(ns, 'k');
    const followers = await insertFollowers(ns, 'k', 1_000);
    const other = await insertMessage(db, tenant.id, ns, {}, { key: 'other' });
    const plain = await insertMessage(db, tenant.id, ns, {});

    // A statement that only records outcomes (limit 0, the consumer's slots all taken) reads none
    // of them, and parks none, though its windows leave the namespace room.
    const recordOnly = {
      limit: 0,
      leaseMs: 60_000,
      windows: { held: [], maxConcurrency: 64, prefetch: 2, tenantShare: 64 },
    };
    expect(await rowsReadByLease(recordOnly)).toBe(0);
    expect((await recordAndLease(db, { completions: [], failures: [], ...recordOnly })).parked).toBe(0);
    // Each lease reads its room and PARK_SLACK more (three times: the bound, the walk, what it
    // parks) and a row per namespace holding messages (finding them), the first ones too, with a
    // thousand waiting.
    expect(await rowsReadByLease({ limit: LIMIT, leaseMs: 60_000 })).toBeLessThanOrEqual(
      3 * (LIMIT + PARK_SLACK) + 10,
    );
    // The first leases set the waiting ones aside, a bounded number each, and reach the others.
    const { leases, leased } = await leaseUntil([other, plain], 40);
    expect(leases).toBeLessThanOrEqual(Math.ceil(1_000 / (LIMIT + PARK_SLACK)) + 2);
    expect(leased.map((m) => m.id).sort()).toEqual([other, plain].sort());
    expect(await parkedOf(followers)).toBeGreaterThanOrEqual(1_000 - (LIMIT + PARK_SLACK));

    // Then a lease reads the few left short of a bound, not the thousand behind the key.
    const read = await rowsReadByLease({ limit: LIMIT, leaseMs: 60_000 });
    expect(read).toBeGreaterThanOrEqual(0);
    expect(read).toBeLessThan(2 * (LIMIT + PARK_SLACK));
  });

  it('frees the next message of the key with each outcome, in order, with the time it fell due', async () => {
    const ns = await freshNamespace();
    const head = await stuckHead(ns, 'k');
    const followers = await insertFollowers(ns, 'k', 200);
    await leaseUntil([], 10);
    // All but the last few, which a lease reads past its room without reaching its bound.
    const parked = await parkedOf(followers);
    expect(parked).toBeGreaterThan(200 - (LIMIT + PARK_SLACK));
    const { rows: due } = await sql<{ id: string; parked_due_at: Date }>`
      select id, parked_due_at from wal.messages where id = any(${followers.slice(0, 3)}::uuid[])`.execute(
      db,
    );

    // The head's retry comes: leased, then delivered.
    await sql`update wal.messages set due_at = now() where id = ${head}`.execute(db);
    const [leasedHead] = (
      await recordAndLease(db, { completions: [], failures: [], limit: LIMIT, leaseMs: 60_000 })
    ).messages;
    expect(leasedHead?.id).toBe(head);
    let cycle = await recordAndLease(db, {
      completions: [{ id: head, leaseToken: leasedHead?.leaseToken as string, targetsDone: ['h'] }],
      failures: [],
      limit: LIMIT,
      leaseMs: 60_000,
    });
    // The first follower is freed by that statement and leased by the next; the others still wait.
    expect(cycle.messages).toEqual([]);
    cycle = await recordAndLease(db, { completions: [], failures: [], limit: LIMIT, leaseMs: 60_000 });
    expect(cycle.messages.map((m) => m.id)).toEqual([followers[0]]);
    const first = cycle.messages[0] as LeasedMessage;
    expect(first.dueAt.getTime()).toBe(due.find((r) => r.id === first.id)?.parked_due_at.getTime());

    // Delivered alone (completeMessages) and dead (failMessages) free the next one too.
    await completeMessages(db, [{ id: first.id, leaseToken: first.leaseToken, targetsDone: ['h'] }]);
    const [second] = await leaseMessages(db, { limit: LIMIT, leaseMs: 60_000 });
    expect(second?.id).toBe(followers[1]);
    await failMessages(db, [
      {
        id: followers[1] as string,
        leaseToken: second?.leaseToken as string,
        error: 'bad',
        dead: true,
        targetsDone: [],
      },
    ]);
    const third = await leaseMessages(db, { limit: LIMIT, leaseMs: 60_000 });
    expect(third.map((m) => m.id)).toEqual([followers[2]]);
    expect(await parkedOf(followers.slice(3))).toBe(parked - 3);
  });

  it('a retry of the head frees nothing: its key keeps waiting', async () => {
    const ns = await freshNamespace();
    const head = await stuckHead(ns, 'k');
    const followers = await insertFollowers(ns, 'k', 100);
    await leaseUntil([], 5);
    const parked = await parkedOf(followers);
    expect(parked).toBeGreaterThan(0);
    await sql`update wal.messages set due_at = now() where id = ${head}`.execute(db);
    const [leasedHead] = await leaseMessages(db, { limit: LIMIT, leaseMs: 60_000 });
    expect(leasedHead?.id).toBe(head);
    await failMessages(db, [
      {
        id: head,
        leaseToken: leasedHead?.leaseToken as string,
        error: 'down',
        retryAfterMs: HOUR,
        targetsDone: [],
      },
    ]);
    expect(await leaseMessages(db, { limit: LIMIT, leaseMs: 60_000 })).toEqual([]);
    expect(await parkedOf(followers)).toBe(parked);
  });

  it('reports a parked message with the time it fell due, and counts it in the lag', async () => {
    const ns = await freshNamespace();
    await stuckHead(ns, 'k');
    const [follower] = await insertFollowers(ns, 'k', 100);
    await leaseUntil([], 5);
    const { rows } = await sql<{ due_at: Date; parked_due_at: Date }>`
      select due_at, parked_due_at from wal.messages where id = ${follower}`.execute(db);
    const row = rows[0] as { due_at: Date; parked_due_at: Date };
    expect(row.due_at.getTime()).toBeGreaterThan(Date.now());

    const answer = await t.app.inject({
      method: 'GET',
      url: `/api/v1/wal/messages/${follower}?namespace=${ns}`,
      headers: {
        authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}`,
      },
    });
    expect(answer.statusCode).toBe(200);
    expect(new Date(answer.json().dueAt).getTime()).toBe(row.parked_due_at.getTime());

    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    const lag = /mercato_wal_consumer_lag_messages\{backend="postgres"\} (\d+)/.exec(metrics.body);
    expect(Number(lag?.[1])).toBeGreaterThanOrEqual(100);
  });
});
