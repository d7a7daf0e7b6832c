import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../../platform/testing/index.ts';
import {
  eventually,
  insertMessage,
  insertNamespace,
  messageRow,
} from '../../delivery/delivery-test-fixtures.ts';
import type { WalTables } from '../../tables.ts';
import { leaseCtes } from './lease-ctes.ts';
import { nextWakeFallbackQuery, nextWakeQuery, WAITING_NAMESPACES_WALKED } from './next-wake.ts';
import { rowsReadBy } from './plan-rows-test-fixtures.ts';
import { completeMessages, failMessages, leaseMessages, nextWakeInMs, recordAndLease } from './queue.ts';

let t: TestApp;
let db: Kysely<WalTables>;
let tenant: TestTenant;
let nsCounter = 0;

beforeAll(async () => {
  t = await startTestApp();
  db = t.ctx.db.kysely;
  tenant = await createTestTenant(t, 'queue');
});

afterAll(async () => {
  await t.close();
});

// Every test gets a tenant-wide clean slate: earlier namespaces stop being leased.
async function freshNamespace(options: Parameters<typeof insertNamespace>[4] = {}) {
  await sql`update wal.namespaces set enabled = false`.execute(db);
  const name = `q-${++nsCounter}`;
  await insertNamespace(db, tenant.id, name, ['h'], options);
  return name;
}

// With the leases earlier tests hold put off a day (they would wake sooner), a disabled namespace
// holding `count` messages delayed an hour and more.
async function disabledWithDelayed(count: number) {
  await sql`update wal.messages set lease_expires_at = now() + interval '1 day' where state = 'delivering'`.execute(
    db,
  );
  const off = await freshNamespace();
  await sql`
    insert into wal.messages (id, tenant_id, namespace, message_id, payload, request_hash, backend, state, due_at,
      max_attempts)
    select gen_random_uuid(), ${tenant.id}, ${off}, 'd' || i, '{}'::jsonb, 'test', 'postgres', 'scheduled',
      now() + interval '1 hour' + i * interval '1 millisecond', 10
    from generate_series(1, ${count}::int) i`.execute(db);
  await sql`update wal.namespaces set enabled = false where name = ${off}`.execute(db);
}

// `count` enabled namespaces named after `prefix`, holding nothing.
async function insertEmptyNamespaces(prefix: string, count: number) {
  await sql`
    insert into wal.namespaces (tenant_id, name, targets, retry_strategy, retry_base_delay_ms, retry_max_delay_ms,
      retry_jitter, max_attempts, consumer_concurrency)
    select ${tenant.id}, ${prefix} || '-empty-' || i, '[]'::jsonb, 'fixed', 10, 50, 0, 10, 8
    from generate_series(1, ${count}::int) i`.execute(db);
}

// A lease's statement, counting what it leased: for rowsReadBy.
const leaseStatement = (options: Parameters<typeof leaseCtes>[0]) =>
  sql`with recursive ${leaseCtes(options)} select count(*) from leased`;

async function leaseExpired(id: string) {
  const { rows } = await sql<{ expired: boolean }>`
    select lease_expires_at < now() as expired from wal.messages where id = ${id}`.execute(db);
  return rows[0]?.expired ? true : undefined;
}

describe('postgres queue', () => {
  it('should fence a consumer whose lease expired: its complete and fail change nothing', async () => {
    const ns = await freshNamespace();
    const id = await insertMessage(db, tenant.id, ns, {});
    const [a] = await leaseMessages(db, { limit: 10, leaseMs: 50 });
    expect(a?.id).toBe(id);
    await eventually(() => leaseExpired(id));
    const [b] = await leaseMessages(db, { limit: 10, leaseMs: 60_000 });
    expect(b?.id).toBe(id);
    expect(b?.attempts).toBe(2);
    expect(b?.leaseToken).not.toBe(a?.leaseToken);

    const staleA = { id, leaseToken: a?.leaseToken as string, targetsDone: ['h'] };
    expect(await completeMessages(db, [staleA])).toEqual({ updated: [], stale: [id] });
    expect(await failMessages(db, [{ ...staleA, error: 'late', dead: true }])).toEqual({
      updated: [],
      stale: [id],
    });
    const untouched = await messageRow(db, id);
    expect(untouched).toMatchObject({
      state: 'delivering',
      attempts: 2,
      lease_token: b?.leaseToken,
      last_error: null,
    });

    const done = await completeMessages(db, [
      { id, leaseToken: b?.leaseToken as string, targetsDone: ['h'] },
    ]);
    expect(done).toEqual({ updated: [{ id }], stale: [] });
    expect(await messageRow(db, id)).toMatchObject({
      state: 'delivered',
      lease_token: null,
      targets_done: ['h'],
    });
    // Completing twice with the same token is fenced too: the lease is gone.
    expect(
      (await completeMessages(db, [{ id, leaseToken: b?.leaseToken as string, targetsDone: [] }])).stale,
    ).toEqual([id]);
  });

  it('should compute exponential backoff and the move to dead letters in the failing statement', async () => {
    const ns = await freshNamespace({ baseDelayMs: 1000, maxAttempts: 10 });
    await sql`update wal.namespaces set retry_strategy = 'exponential', retry_max_delay_ms = 3000
      where tenant_id = ${tenant.id} and name = ${ns}`.execute(db);
    const ids = [
      await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 5 }),
      await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 5 }),
      await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 1 }),
      await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 5 }),
    ];
    // Pretend the first message already failed twice: its third attempt waits base·2² = 4 s, capped at 3 s.
    await sql`update wal.messages set attempts = 2 where id = ${ids[0]}`.execute(db);
    const leased = await leaseMessages(db, { limit: 10, leaseMs: 60_000 });
    const token = (id: string) => leased.find((m) => m.id === id)?.leaseToken as string;
    const [first, second, third, fourth] = ids as [string, string, string, string];
    const result = await failMessages(db, [
      { id: first, leaseToken: token(first), error: 'e1', targetsDone: [] },
      { id: second, leaseToken: token(second), error: 'e2', targetsDone: [], retryAfterMs: 20_000 },
      { id: third, leaseToken: token(third), error: 'e3', targetsDone: [] },
      { id: fourth, leaseToken: token(fourth), error: 'e4', targetsDone: ['h'], dead: true },
    ]);
    expect(result.stale).toEqual([]);
    expect(Object.fromEntries(result.updated.map((m) => [m.id, m.state]))).toEqual({
      [first]: 'retrying',
      [second]: 'retrying',
      [third]: 'dead',
      [fourth]: 'dead',
    });
    const { rows } = await sql<{ id: string; wait_ms: number; dead: boolean }>`
      select id, (extract(epoch from due_at - now()) * 1000)::float8 as wait_ms, dead_at is not null as dead
      from wal.messages where id = any(${ids}::uuid[])`.execute(db);
    const wait = Object.fromEntries(rows.map((r) => [r.id, r.wait_ms]));
    expect(wait[first]).toBeGreaterThan(2000);
    expect(wait[first]).toBeLessThanOrEqual(3000);
    expect(wait[second]).toBeGreaterThan(19_000);
    expect(wait[second]).toBeLessThanOrEqual(20_000);
    expect(
      rows
        .filter((r) => r.dead)
        .map((r) => r.id)
        .sort(),
    ).toEqual([third, fourth].sort());
    expect(await messageRow(db, fourth)).toMatchObject({ last_error: 'e4', targets_done: ['h'] });
  });

  it('should retry the 999th failure of a day-based exponential policy instead of failing the whole batch on a float overflow', async () => {
    // The largest policy the API takes (base 1 day, 1000 attempts). A receiver answering 429
    // with Retry-After: 0 drives a message to attempt 999 in seconds; base·2^998 overflowed
    // double precision, and the error failed every message of the consumer's batch, every lease.
    const ns = await freshNamespace({ baseDelayMs: 86_400_000, maxAttempts: 1000 });
    await sql`update wal.namespaces set retry_strategy = 'exponential', retry_max_delay_ms = 86400000
      where tenant_id = ${tenant.id} and name = ${ns}`.execute(db);
    const poisoned = await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 1000 });
    const other = await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 1000 });
    await sql`update wal.messages set attempts = 998 where id = ${poisoned}`.execute(db);
    const leased = await leaseMessages(db, { limit: 10, leaseMs: 60_000 });
    const token = (id: string) => leased.find((m) => m.id === id)?.leaseToken as string;
    expect(leased.find((m) => m.id === poisoned)?.attempts).toBe(999);
    const result = await failMessages(db, [
      { id: poisoned, leaseToken: token(poisoned), error: 'e1', targetsDone: [] },
      { id: other, leaseToken: token(other), error: 'e2', targetsDone: [] },
    ]);
    expect(result.stale).toEqual([]);
    expect(result.updated.map((m) => m.state)).toEqual(['retrying', 'retrying']);
    const { rows } = await sql<{ wait_ms: number }>`
      select (extract(epoch from due_at - now()) * 1000)::float8 as wait_ms
      from wal.messages where id = ${poisoned}`.execute(db);
    // Capped at the policy's maximum, one day (no jitter).
    expect(rows[0]?.wait_ms).toBeGreaterThan(86_000_000);
    expect(rows[0]?.wait_ms).toBeLessThanOrEqual(86_400_000);
  });

  it('should hold back a keyed message until the earlier one of its key is done', async () => {
    const ns = await freshNamespace();
    const first = await insertMessage(db, tenant.id, ns, {}, { key: 'k' });
    const second = await insertMessage(db, tenant.id, ns, {}, { key: 'k' });
    const other = await insertMessage(db, tenant.id, ns, {}, { key: 'other' });
    const leased = await leaseMessages(db, { limit: 10, leaseMs: 60_000 });
    expect(leased.map((m) => m.id).sort()).toEqual([first, other].sort());
    // A live lease is not handed out twice.
    expect(await leaseMessages(db, { limit: 10, leaseMs: 60_000 })).toEqual([]);
    const token = leased.find((m) => m.id === first)?.leaseToken as string;
    await completeMessages(db, [{ id: first, leaseToken: token, targetsDone: ['h'] }]);
    expect((await leaseMessages(db, { limit: 10, leaseMs: 60_000 })).map((m) => m.id)).toEqual([second]);
  });

  it('should not lease a delayed message, and report when it falls due', async () => {
    const ns = await freshNamespace();
    await insertMessage(db, tenant.id, ns, {}, { dueInMs: 60_000 });
    expect(await leaseMessages(db, { limit: 10, leaseMs: 60_000 })).toEqual([]);
    const ms = await nextWakeInMs(db);
    expect(ms).toBeGreaterThan(50_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });

  it("should find the next due time without reading a disabled namespace's delayed messages", async () => {
    await disabledWithDelayed(2000);
    const on = await freshNamespace();
    await insertMessage(db, tenant.id, on, {}, { dueInMs: 2 * 3_600_000 });
    const ms = (await nextWakeInMs(db)) as number;
    expect(ms).toBeGreaterThan(7_100_000);
    expect(ms).toBeLessThanOrEqual(7_200_000);
    // The first 100 waiting, then one probe per namespace: not the 2,000 before.
    const read = async (statement: Parameters<typeof rowsReadBy>[1]) =>
      rowsReadBy(db, statement, 'messages_due');
    expect((await read(nextWakeQuery())) + (await read(nextWakeFallbackQuery()))).toBeLessThan(150);
  });

  it('should find the next due time past a disabled namespace without probing every empty open one', async () => {
    await disabledWithDelayed(150);
    const on = await freshNamespace();
    await insertMessage(db, tenant.id, on, {}, { dueInMs: 2 * 3_600_000 });
    await insertEmptyNamespaces(on, 300);
    // The 100 earliest are the disabled namespace's: the fallback looks further.
    expect((await nextWakeQuery().execute(db)).rows[0]?.crowded).toBe(true);
    const ms = (await nextWakeInMs(db)) as number;
    expect(ms).toBeGreaterThan(7_100_000);
    expect(ms).toBeLessThanOrEqual(7_200_000);
    // One probe for each namespace holding waiting messages (a few, of the tests before), not one
    // for each of the 300 open ones.
    expect(await rowsReadBy(db, nextWakeFallbackQuery(), 'messages_due', 'scans')).toBeLessThan(60);
    // A namespace holding a message already due (a backlog) is looked at from now on.
    const backlog = `${on}-empty-7`;
    await insertMessage(db, tenant.id, backlog, {}, { dueInMs: -60_000 });
    await insertMessage(db, tenant.id, backlog, {}, { dueInMs: 90 * 60_000 });
    const sooner = (await nextWakeInMs(db)) as number;
    expect(sooner).toBeGreaterThan(5_300_000);
    expect(sooner).toBeLessThanOrEqual(5_400_000);
  });

  it(`should find the same when ${WAITING_NAMESPACES_WALKED} namespaces or more hold waiting messages`, async () => {
    const off = await freshNamespace();
    await sql`
      insert into wal.messages (id, tenant_id, namespace, message_id, payload, request_hash, backend, state, due_at,
        max_attempts)
      select gen_random_uuid(), ${tenant.id}, ${off}, 'd' || i, '{}'::jsonb, 'test', 'postgres', 'scheduled',
        now() + interval '1 hour' + i * interval '1 millisecond', 10
      from generate_series(1, 150) i`.execute(db);
    await sql`update wal.namespaces set enabled = false where name = ${off}`.execute(db);
    const count = WAITING_NAMESPACES_WALKED + 50;
    await insertEmptyNamespaces(off, count);
    const busy = (dueIn: string) => sql`
      insert into wal.messages (id, tenant_id, namespace, message_id, payload, request_hash, backend, state, due_at,
        max_attempts)
      select gen_random_uuid(), ${tenant.id}, ${off} || '-empty-' || i, 'b' || i, '{}'::jsonb, 'test', 'postgres',
        'scheduled', now() + ${dueIn}::interval + i * interval '1 millisecond', 10
      from generate_series(1, ${count}::int) i`;
    try {
      // Every open one holds a message due in 3 hours or later, the earliest of the last namespace.
      await busy('3 hours').execute(db);
      await sql`update wal.messages set due_at = due_at - interval '1 minute'
        where tenant_id = ${tenant.id} and namespace = ${`${off}-empty-${count}`}`.execute(db);
      const ms = (await nextWakeInMs(db)) as number;
      expect(ms).toBeGreaterThan(3 * 3_600_000 - 70_000);
      expect(ms).toBeLessThanOrEqual(3 * 3_600_000 - 50_000);
      // A namespace holding messages already due (a backlog) is looked at from now on.
      await sql`update wal.messages set due_at = now() - interval '1 minute'
        where tenant_id = ${tenant.id} and namespace = ${`${off}-empty-3`}`.execute(db);
      await sql`
        insert into wal.messages (id, tenant_id, namespace, message_id, payload, request_hash, backend, state, due_at,
          max_attempts)
        values (gen_random_uuid(), ${tenant.id}, ${`${off}-empty-3`}, 'soon', '{}'::jsonb, 'test', 'postgres',
          'scheduled', now() + interval '2 hours', 10)`.execute(db);
      const soon = (await nextWakeInMs(db)) as number;
      expect(soon).toBeGreaterThan(2 * 3_600_000 - 60_000);
      expect(soon).toBeLessThanOrEqual(2 * 3_600_000);
    } finally {
      // The leases of the tests after would walk these namespaces.
      await sql`delete from wal.messages where tenant_id = ${tenant.id} and namespace like ${`${off}-empty-%`}`.execute(
        db,
      );
    }
  });

  it('should look into the namespaces holding messages only, not every empty one', async () => {
    const busy = await freshNamespace();
    const id = await insertMessage(db, tenant.id, busy, {});
    await insertEmptyNamespaces(busy, 300);
    const options = { limit: 10, leaseMs: 60_000 };
    const scans = await rowsReadBy(db, leaseStatement(options), 'messages_due', 'scans');
    expect(scans).toBeGreaterThan(0);
    expect(scans).toBeLessThan(50);
    expect((await leaseMessages(db, options)).map((m) => m.id)).toEqual([id]);
  });

  it("should look up only an expired lease's own namespace, not every open one, while a disabled namespace's lease lies expired", async () => {
    const busy = await freshNamespace();
    const id = await insertMessage(db, tenant.id, busy, {});
    const disabled = `${busy}-disabled`;
    await insertNamespace(db, tenant.id, disabled, ['h']);
    const stranded = await insertMessage(db, tenant.id, disabled, {});
    await sql`update wal.messages set state = 'delivering', attempts = 1, lease_token = gen_random_uuid(),
      lease_expires_at = now() - interval '1 minute' where id = ${stranded}`.execute(db);
    const enable = (enabled: boolean) =>
      sql`update wal.namespaces set enabled = ${enabled} where tenant_id = ${tenant.id} and name = ${disabled}`.execute(
        db,
      );
    await enable(false);
    await insertEmptyNamespaces(busy, 300);
    const options = { limit: 10, leaseMs: 60_000 };
    // The busy namespace's row and the disabled one's, a few times each: not the 300 open ones.
    const read = await rowsReadBy(db, leaseStatement(options), 'namespaces');
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(20);
    expect((await leaseMessages(db, options)).map((m) => m.id)).toEqual([id]);
    // Enabled again, its expired lease is leased again.
    await enable(true);
    const again = await leaseMessages(db, options);
    expect(again.map((m) => [m.id, m.attempts])).toEqual([[stranded, 2]]);
  });

  it('should record each target attempt of a completed message', async () => {
    const ns = await freshNamespace();
    const id = await insertMessage(db, tenant.id, ns, {});
    const [m] = await leaseMessages(db, { limit: 10, leaseMs: 60_000 });
    const now = new Date();
    await completeMessages(db, [
      {
        id,
        leaseToken: m?.leaseToken as string,
        targetsDone: ['h'],
        attempts: [{ target: 'h', startedAt: now, finishedAt: now, outcome: 'delivered', statusCode: 204 }],
      },
    ]);
    const { rows } = await sql<{ attempt: number; status_code: number; tenant_id: string }>`
      select attempt, status_code, tenant_id from wal.attempts where message_pk = ${id}`.execute(db);
    expect(rows).toEqual([{ attempt: 1, status_code: 204, tenant_id: tenant.id }]);
  });

  it('should record outcomes and lease in one statement, fenced, never re-leasing what it records', async () => {
    const ns = await freshNamespace();
    const keyed = await insertMessage(db, tenant.id, ns, {}, { key: 'k' });
    const next = await insertMessage(db, tenant.id, ns, {}, { key: 'k' });
    const doomed = await insertMessage(db, tenant.id, ns, {}, { maxAttempts: 1 });
    // Leases that expire at once: still ours to record, and never handed out by the same statement.
    const first = await recordAndLease(db, { completions: [], failures: [], limit: 10, leaseMs: 1 });
    expect(first.messages.map((m) => m.id).sort()).toEqual([keyed, doomed].sort());
    await eventually(() => leaseExpired(keyed));
    const token = (id: string) => first.messages.find((m) => m.id === id)?.leaseToken as string;
    const now = new Date();
    const cycle = await recordAndLease(db, {
      completions: [
        {
          id: keyed,
          leaseToken: token(keyed),
          targetsDone: ['h'],
          attempts: [{ target: 'h', startedAt: now, finishedAt: now, outcome: 'delivered' }],
        },
        { id: next, leaseToken: '00000000-0000-4000-8000-000000000000', targetsDone: ['h'] },
      ],
      failures: [{ id: doomed, leaseToken: token(doomed), error: 'boom', targetsDone: [] }],
      limit: 10,
      leaseMs: 60_000,
    });
    expect(cycle.completed).toEqual({ updated: [{ id: keyed }], stale: [next] });
    expect(cycle.failed.stale).toEqual([]);
    expect(cycle.failed.updated).toMatchObject([
      { id: doomed, state: 'dead', attempts: 1, lastError: 'boom' },
    ]);
    // The lease looked at the queue as it was before the statement: the next of key k waits a cycle.
    expect(cycle.messages).toEqual([]);
    expect(await messageRow(db, keyed)).toMatchObject({ state: 'delivered', lease_token: null });
    const { rows } = await sql<{ attempt: number; outcome: string }>`
      select attempt, outcome from wal.attempts where message_pk = ${keyed}`.execute(db);
    expect(rows).toEqual([{ attempt: 1, outcome: 'delivered' }]);
    const again = await recordAndLease(db, { completions: [], failures: [], limit: 10, leaseMs: 60_000 });
    expect(again.messages.map((m) => m.id)).toEqual([next]);
    expect(again.messages[0]).toMatchObject({ attempts: 1, payload: {}, targetsDone: [] });
    expect(again.messages[0]?.dueAt).toBeInstanceOf(Date);
  });

  it("should lease each namespace up to its window and each tenant up to its share, whatever another namespace's older backlog", async () => {
    const older = await freshNamespace({ concurrency: 2 });
    const sibling = `q-${++nsCounter}`;
    await insertNamespace(db, tenant.id, sibling, ['h'], { concurrency: 2 });
    const other = await createTestTenant(t, 'queue-other');
    const elsewhere = `q-${++nsCounter}`;
    await insertNamespace(db, other.id, elsewhere, ['h'], { concurrency: 256 });
    // The older namespace's backlog is due first: a lease in due order alone would take only it.
    for (let i = 0; i < 10; i++) await insertMessage(db, tenant.id, older, { i });
    for (let i = 0; i < 10; i++) await insertMessage(db, tenant.id, sibling, { i });
    for (let i = 0; i < 10; i++) await insertMessage(db, other.id, elsewhere, { i });
    const count = (messages: { namespace: string }[], name: string) =>
      messages.filter((m) => m.namespace === name).length;

    // `older` holds its whole window (2); the tenant may hold 3, so `sibling` gets 1; the other
    // tenant's namespace asks for 256, capped to maxConcurrency 4 (× prefetch 1), then to its share 3.
    const leased = await leaseMessages(db, {
      limit: 100,
      leaseMs: 60_000,
      windows: {
        held: [{ tenantId: tenant.id, namespace: older, count: 2 }],
        maxConcurrency: 4,
        prefetch: 1,
        tenantShare: 3,
      },
    });
    expect([count(leased, older), count(leased, sibling), count(leased, elsewhere)]).toEqual([0, 1, 3]);

    // Prefetch multiplies each namespace's window; the global limit still takes the oldest first.
    const next = await leaseMessages(db, {
      limit: 5,
      leaseMs: 60_000,
      windows: { held: [], maxConcurrency: 4, prefetch: 2, tenantShare: 100 },
    });
    expect([count(next, older), count(next, sibling), count(next, elsewhere)]).toEqual([4, 1, 0]);

    // A namespace asking for 256 at once gets maxConcurrency (4).
    const capped = await leaseMessages(db, {
      limit: 100,
      leaseMs: 60_000,
      windows: { held: [], maxConcurrency: 4, prefetch: 1, tenantShare: 100 },
    });
    expect([count(capped, older), count(capped, sibling), count(capped, elsewhere)]).toEqual([2, 2, 4]);
  });
});
