import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../platform/http/index.ts';
import { testRedisUrl } from '../../../platform/testing/index.ts';
import { createRedisStreamsBackend } from './index.ts';
import { ack, consumerDeps, eventually, harness, row, testNamespace } from './test-fixtures.ts';

const url = testRedisUrl();

describe.skipIf(!url)('redis-streams backend, edges', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness(url!);
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('works over RESP2 as over RESP3', async () => {
    const resp2 = new Redis(url!, { protocol: 2 });
    await resp2.ping();
    try {
      const backend = createRedisStreamsBackend(resp2, { prefix: h.prefix, blockMs: 200 });
      const ns = testNamespace();
      await backend.append([row(ns, 'now'), row(ns, 'later', { dueAt: Date.now() + 200 })]);
      const lag = await backend.lag();
      expect(lag.messages).toBe(2);
      const { deps, calls } = consumerDeps([ns], () => ack());
      await backend.consume(deps);
      await eventually(() => (calls.length === 2 ? true : undefined));
      await eventually(async () => ((await backend.lag()).messages === 0 ? true : undefined));
      await backend.close();
    } finally {
      await resp2.quit();
    }
  });

  it('takes a write made while its client is still making its first connection', async () => {
    const fresh = new Redis(url!);
    try {
      expect(fresh.status).not.toBe('ready');
      const backend = createRedisStreamsBackend(fresh, { prefix: h.prefix, blockMs: 200 });
      const ns = testNamespace();
      await backend.append([row(ns, 'first')]);
      expect((await backend.lag()).messages).toBe(1);
      await backend.close();
    } finally {
      await fresh.quit();
    }
  });

  it('works on a client with a keyPrefix', async () => {
    const prefixed = new Redis(url!, { keyPrefix: `${h.prefix}:kp:` });
    await prefixed.ping();
    try {
      const backend = createRedisStreamsBackend(prefixed, { prefix: 'wal', blockMs: 200 });
      const ns = testNamespace();
      await backend.append([row(ns, 'k1', { key: 'k' }), row(ns, 'k2', { key: 'k' })]);
      const { deps, calls } = consumerDeps([ns], () => ack());
      await backend.consume(deps);
      await eventually(() => (calls.length === 2 ? true : undefined));
      expect(calls.map((c) => c.message.messageId)).toEqual(['k1', 'k2']);
      expect((await backend.find(ns.tenantId, ns.name, 'k2'))?.state).toBe('delivered');
      await backend.close();
    } finally {
      await prefixed.quit();
    }
  });

  it('serves namespaces added after start once told they changed', async () => {
    const ns = testNamespace({ backend: 'postgres', fallbackBackend: 'redis-streams' });
    const backend = h.backend();
    await backend.append([row(ns, 'm1')]);
    let served: (typeof ns)[] = [];
    let changed: (() => void) | undefined;
    const { deps, calls } = consumerDeps([], () => ack());
    deps.namespaces = async () => served;
    deps.onNamespacesChanged = (listener) => {
      changed = listener;
      return () => {};
    };
    await backend.consume(deps);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(calls).toHaveLength(0);
    served = [ns, testNamespace({ backend: 'nats-jetstream' })];
    changed!();
    await eventually(() => (calls.length === 1 ? true : undefined));
  });

  it('reports the age of the oldest due message in lag()', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    await backend.append([row(ns, 'old', { dueAt: Date.now() - 5_000 })]);
    const lag = await backend.lag();
    expect(lag.messages).toBe(1);
    expect(lag.oldestMs).toBeGreaterThanOrEqual(5_000);
  });

  it('writes nothing of a batch spanning namespaces when one messageId conflicts', async () => {
    const a = testNamespace({ name: 'a' });
    const b = testNamespace({ tenantId: a.tenantId, name: 'b' });
    const backend = h.backend();
    await backend.append([row(b, 'm1')]);
    const error = await backend
      .append([row(a, 'x1'), row(b, 'm1', { hash: 'other' }), row(b, 'm2')])
      .catch((err: unknown) => err);
    expect((error as AppError).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await backend.find(a.tenantId, 'a', 'x1')).toBeUndefined();
    expect(await backend.find(b.tenantId, 'b', 'm2')).toBeUndefined();
    const outcomes = await backend.append([row(a, 'x1'), row(b, 'm1'), row(b, 'm2')]);
    expect(outcomes.map((o) => [o.message.namespace, o.message.messageId, o.replayed])).toEqual([
      ['a', 'x1', false],
      ['b', 'm1', true],
      ['b', 'm2', false],
    ]);
  });

  it('treats a repeated messageId within one batch as a replay of the first', async () => {
    const ns = testNamespace();
    const backend = h.backend();
    const [first, second] = await backend.append([row(ns, 'm1'), row(ns, 'm1')]);
    expect(first!.replayed).toBe(false);
    expect(second).toMatchObject({ replayed: true, message: { id: first!.message.id } });
    const error = await backend
      .append([row(ns, 'm2'), row(ns, 'm2', { hash: 'other' })])
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect(await backend.find(ns.tenantId, ns.name, 'm2')).toBeUndefined();
  });
});
