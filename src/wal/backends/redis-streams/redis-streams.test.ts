import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../platform/http/index.ts';
import { testRedisUrl } from '../../../platform/testing/index.ts';
import { BackendUnavailableError, type StreamMessage } from '../stream/contract.ts';
import { createRedisStreamsBackend } from './index.ts';
import { GROUP, nsKeys } from './keys.ts';
import {
  ack,
  type Call,
  captureLogger,
  consumerDeps,
  dead,
  eventually,
  harness,
  retry,
  row,
  testNamespace,
} from './test-fixtures.ts';

const url = testRedisUrl();

describe.skipIf(!url)('redis-streams backend', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness(url!);
  });
  afterEach(async () => {
    await h.cleanup();
  });

  const find = (ns: { tenantId: string; name: string }, messageId: string) =>
    h.backend().find(ns.tenantId, ns.name, messageId);

  it('writes then delivers', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    const [outcome] = await backend.append([row(ns, 'm1')]);
    expect(outcome).toMatchObject({ replayed: false, message: { messageId: 'm1', state: 'pending' } });
    const { deps, calls } = consumerDeps([ns], () => ack());
    await backend.consume(deps);
    await eventually(() => (calls.length === 1 ? true : undefined));
    expect(calls[0]!.message).toMatchObject({ messageId: 'm1', attempts: 1, payload: '{"messageId":"m1"}' });
    expect(calls[0]!.message.id).toBe(outcome!.message.id);
    const view = await eventually(async () => {
      const v = await backend.find(ns.tenantId, ns.name, 'm1');
      return v?.state === 'delivered' ? v : undefined;
    });
    expect(view.history).toHaveLength(1);
    expect(view.history[0]!.startedAt).toBeInstanceOf(Date);
    expect(view.deliveredAt).toBeTypeOf('number');
    expect(view.message.targetsDone).toEqual(['t']);
  });

  it('answers an idempotent replay with the first outcome', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    const [first] = await backend.append([row(ns, 'm1')]);
    const [again] = await backend.append([row(ns, 'm1')]);
    expect(again!.replayed).toBe(true);
    expect(again!.message.id).toBe(first!.message.id);
    expect(again!.message.createdAt.getTime()).toBe(first!.message.createdAt.getTime());
    expect(await h.redis.xlen(nsKeys(h.prefix, ns.tenantId, ns.name).stream)).toBe(1);
  });

  it('refuses a messageId reused with another body (409) and writes nothing of the batch', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    await backend.append([row(ns, 'm1')]);
    const error = await backend
      .append([row(ns, 'm2'), row(ns, 'm1', { hash: 'other' })])
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((error as AppError).status).toBe(409);
    expect(await find(ns, 'm2')).toBeUndefined();
    expect(await h.redis.xlen(nsKeys(h.prefix, ns.tenantId, ns.name).stream)).toBe(1);
  });

  it('never delivers a delayed message early, and delivers it soon after', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    const dueAt = Date.now() + 400;
    const [outcome] = await backend.append([row(ns, 'later', { dueAt })]);
    expect(outcome!.message.state).toBe('scheduled');
    expect((await backend.lag()).messages).toBe(1);
    const { deps, calls } = consumerDeps([ns], () => ack());
    await backend.consume(deps);
    await eventually(() => (calls.length === 1 ? true : undefined));
    expect(calls[0]!.at).toBeGreaterThanOrEqual(dueAt);
    expect(calls[0]!.message.dueAt).toBe(dueAt);
  });

  it('retries then succeeds, keeping both attempts in the history', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    await backend.append([row(ns, 'm1')]);
    const { deps, calls } = consumerDeps([ns], (_m, c) => (c.length === 1 ? retry(100) : ack()));
    await backend.consume(deps);
    const view = await eventually(async () => {
      const v = await find(ns, 'm1');
      return v?.state === 'delivered' ? v : undefined;
    });
    expect(calls.map((c) => c.message.attempts)).toEqual([1, 2]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(100);
    expect(calls[1]!.history).toHaveLength(1);
    expect(view.history.map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'failed'],
      [2, 'delivered'],
    ]);
    expect(view.message.attempts).toBe(2);
  });

  it('marks a message dead when the decision says dead', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    await backend.append([row(ns, 'm1')]);
    const { deps } = consumerDeps([ns], () => dead());
    await backend.consume(deps);
    const view = await eventually(async () => {
      const v = await find(ns, 'm1');
      return v?.state === 'dead' ? v : undefined;
    });
    expect(view.lastError).toBe('gone for good');
    expect(view.deadAt).toBeTypeOf('number');
    expect(view.history).toHaveLength(1);
    expect(await h.redis.xlen(nsKeys(h.prefix, ns.tenantId, ns.name).stream)).toBe(0);
  });

  it('revives a dead message with attempts reset', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    await backend.append([row(ns, 'm1')]);
    const { deps, calls } = consumerDeps([ns], (_m, c) => (c.length === 1 ? dead() : ack()));
    await backend.consume(deps);
    await eventually(async () => ((await find(ns, 'm1'))?.state === 'dead' ? true : undefined));
    const [plain] = await backend.append([row(ns, 'm1')]);
    expect(plain).toMatchObject({ replayed: true, message: { state: 'dead' } });
    const [revived] = await backend.append([row(ns, 'm1')], { revive: true });
    expect(revived!.message.state).toBe('pending');
    const view = await eventually(async () => {
      const v = await find(ns, 'm1');
      return v?.state === 'delivered' ? v : undefined;
    });
    expect(calls.map((c) => c.message.attempts)).toEqual([1, 1]);
    expect(view.history).toHaveLength(2);
  });

  it('keeps order per key across a retry', async () => {
    const ns = testNamespace({ consumerConcurrency: 8 });
    const backend = h.backend();
    await backend.append([row(ns, 'k1', { key: 'k' }), row(ns, 'k2', { key: 'k' }), row(ns, 'free')]);
    await backend.append([row(ns, 'k3', { key: 'k' })]);
    const { deps, calls } = consumerDeps([ns], (m, c) =>
      m.messageId === 'k1' && c.filter((x) => x.message.messageId === 'k1').length === 1 ? retry(200) : ack(),
    );
    await backend.consume(deps);
    await eventually(async () => ((await find(ns, 'k3'))?.state === 'delivered' ? true : undefined));
    const keyed = calls.filter((c) => c.message.key === 'k').map((c) => c.message.messageId);
    expect(keyed).toEqual(['k1', 'k1', 'k2', 'k3']);
    expect(calls.some((c) => c.message.messageId === 'free')).toBe(true);
    expect(await h.redis.get(nsKeys(h.prefix, ns.tenantId, ns.name).parked)).toBe('0');
  });

  it('hands a message whose consumer died to another consumer after leaseMs', async () => {
    const ns = testNamespace();
    const keys = nsKeys(h.prefix, ns.tenantId, ns.name);
    await h.redis.xgroup('CREATE', keys.stream, GROUP, '0', 'MKSTREAM');
    const backend = h.backend('survivor');
    await backend.append([row(ns, 'm1')]);
    // A consumer reads the entry, then dies without taking or acking it.
    const read = await h.redis.xreadgroup('GROUP', GROUP, 'ghost', 'COUNT', 10, 'STREAMS', keys.stream, '>');
    expect(read).not.toBeNull();
    const readAt = Date.now();
    const { deps, calls } = consumerDeps([ns], () => ack(), { leaseMs: 300 });
    await backend.consume(deps);
    await eventually(() => (calls.length === 1 ? true : undefined));
    expect(calls[0]!.at - readAt).toBeGreaterThanOrEqual(300);
    await eventually(async () => ((await find(ns, 'm1'))?.state === 'delivered' ? true : undefined));
  });

  it('refuses the decision of a consumer whose lease was taken over (fencing)', async () => {
    const ns = testNamespace({ consumerConcurrency: 1 });
    const slow = h.backend('slow');
    await slow.append([row(ns, 'm1')]);
    let releaseSlow: (() => void) | undefined;
    const captured = captureLogger();
    const a = consumerDeps(
      [ns],
      () =>
        new Promise((resolve) => {
          releaseSlow = () => resolve(ack());
        }),
      { leaseMs: 300, logger: captured.logger },
    );
    await slow.consume(a.deps);
    await eventually(() => (a.calls.length === 1 ? true : undefined));
    const b = consumerDeps([ns], () => ack(), { leaseMs: 300 });
    await h.backend('fast').consume(b.deps);
    await eventually(async () => ((await find(ns, 'm1'))?.state === 'delivered' ? true : undefined));
    expect(b.calls[0]!.message.attempts).toBe(2);
    releaseSlow!();
    await eventually(() => (captured.lines.some((l) => l.includes('stale lease')) ? true : undefined));
    const view = await find(ns, 'm1');
    expect(view!.history.map((r) => r.attempt)).toEqual([2]);
    expect(view!.message.attempts).toBe(2);
  });

  it('answers BackendUnavailableError fast when the server cannot be reached', async () => {
    const port = await new Promise<number>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const down = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    down.on('error', () => {});
    try {
      const backend = createRedisStreamsBackend(down, { prefix: h.prefix });
      const started = Date.now();
      await expect(backend.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
      const ns = testNamespace();
      await expect(backend.append([row(ns, 'm1')])).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      down.disconnect();
    }
  });

  it('delivers 200 concurrent writes with two consumers, none lost', async () => {
    const ns = testNamespace({ consumerConcurrency: 8 });
    const writer = h.backend();
    const ids = Array.from({ length: 200 }, (_, i) => `c-${i}`);
    const outcomes = await Promise.all(ids.map((id) => writer.append([row(ns, id)])));
    expect(outcomes.every(([o]) => o!.replayed === false)).toBe(true);
    const seen: StreamMessage[] = [];
    const decide = (m: StreamMessage, _c: Call[]) => {
      seen.push(m);
      return ack();
    };
    await h.backend('one').consume(consumerDeps([ns], decide).deps);
    await h.backend('two').consume(consumerDeps([ns], decide).deps);
    await eventually(() => (new Set(seen.map((m) => m.messageId)).size === 200 ? true : undefined), 20_000);
    expect(new Set(seen.map((m) => m.messageId))).toEqual(new Set(ids));
    expect(seen).toHaveLength(200);
    await eventually(async () => ((await writer.lag()).messages === 0 ? true : undefined));
    const states = await Promise.all(ids.map(async (id) => (await find(ns, id))?.state));
    expect(states.every((s) => s === 'delivered')).toBe(true);
  });

  it('holds no more messages than it delivers at once while handlers are slow', async () => {
    const ns = testNamespace({ consumerConcurrency: 2 });
    const backend = h.backend();
    const ids = Array.from({ length: 10 }, (_, i) => `slow-${i}`);
    await backend.append(ids.map((id) => row(ns, id)));
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { deps, calls } = consumerDeps([ns], async () => {
      await gate;
      return ack();
    });
    await backend.consume(deps);
    await eventually(() => (calls.length === 2 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Taken messages wait out their lease; the rest stay in the stream for any other consumer.
    const keys = nsKeys(h.prefix, ns.tenantId, ns.name);
    const [pending] = (await h.redis.xpending(keys.stream, GROUP)) as [number];
    expect(pending).toBe(2);
    open();
    await eventually(async () => ((await backend.lag()).messages === 0 ? true : undefined), 10_000);
    expect(calls.map((c) => c.message.messageId).sort()).toEqual([...ids].sort());
  });
});
