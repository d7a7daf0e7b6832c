import { randomBytes, randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../platform/observability/index.ts';
import { testNatsUrl } from '../../../platform/testing/index.ts';
import { gatePublishes } from '../../e2e/nats-publish-gate.ts';
import { startTcpProxy } from '../../e2e/tcp-proxy.ts';
import type { Namespace } from '../../namespaces/namespace.ts';
import {
  type AttemptHistory,
  BackendUnavailableError,
  type Decision,
  NamespaceRetiredError,
  type NewMessageRow,
  type StreamBackend,
  type StreamConsumer,
  type StreamMessage,
  streamMessageOf,
} from '../stream/contract.ts';
import { createCore } from './core.ts';
import { createNatsJetStreamBackend } from './index.ts';
import { namespaceNames, stateKey } from './names.ts';
import { encodeJson, newState } from './state.ts';
import { sweepNamespace } from './sweep.ts';

const url = testNatsUrl();
const prefix = `mt_${process.pid}_${randomBytes(3).toString('hex')}`;
const logger = createLogger(process.env['MT_LOG'] ?? 'silent');
const LEASE_MS = 1_000;

let nc: NatsConnection;
let backend: StreamBackend;
let nsCounter = 0;
const running: StreamConsumer[] = [];

function namespace(overrides: Partial<Namespace> = {}): Namespace {
  return {
    tenantId: randomUUID(),
    name: `ns-${++nsCounter}`,
    backend: 'nats-jetstream',
    fallbackBackend: null,
    drainingBackends: [],
    payloadSchema: null,
    retry: { strategy: 'fixed', baseDelayMs: 100, maxDelayMs: 100, maxAttempts: 5, jitter: 0 },
    targets: [],
    rateLimitPerSecond: null,
    maxDelayMs: 86_400_000,
    maxPayloadBytes: 65_536,
    deliveredRetentionSeconds: 3600,
    deadRetentionSeconds: 3600,
    allowedHosts: [],
    consumerConcurrency: 4,
    enabled: true,
    system: false,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

function row(
  ns: Namespace,
  messageId: string,
  options: { key?: string; dueInMs?: number; hash?: string; payload?: unknown } = {},
): NewMessageRow {
  const now = Date.now();
  return {
    id: randomUUID(),
    tenant_id: ns.tenantId,
    namespace: ns.name,
    message_id: messageId,
    ordering_key: options.key ?? null,
    payload: JSON.stringify(options.payload ?? { messageId }),
    headers: '{}',
    request_hash: options.hash ?? `hash-${messageId}`,
    backend: 'nats-jetstream',
    state: options.dueInMs ? 'scheduled' : 'pending',
    due_at: new Date(now + (options.dueInMs ?? 0)),
    max_attempts: 5,
    created_at: new Date(now),
  };
}

const record = (outcome: 'delivered' | 'failed') => ({
  target: 't',
  startedAt: new Date(),
  finishedAt: new Date(),
  outcome,
});
const ack = (): Decision => ({ action: 'ack', targetsDone: ['t'], attempts: [record('delivered')] });
const retry = (delayMs: number): Decision => ({
  action: 'retry',
  delayMs,
  error: 'boom',
  targetsDone: [],
  attempts: [record('failed')],
});
const dead = (): Decision => ({
  action: 'dead',
  error: 'gone',
  targetsDone: [],
  attempts: [record('failed')],
});

type Call = { message: StreamMessage; history: AttemptHistory; at: number };

/** A consumer whose deliver records every call and answers what `decide` says. */
async function consumeWith(
  namespaces: Namespace[],
  decide: (message: StreamMessage, n: number) => Decision | Promise<Decision> = () => ack(),
  on: StreamBackend = backend,
) {
  const calls: Call[] = [];
  const consumer = await on.consume({
    logger,
    leaseMs: LEASE_MS,
    namespaces: async () => namespaces,
    onNamespacesChanged: () => () => {},
    deliver: async (_ns, message, history) => {
      calls.push({ message, history, at: Date.now() });
      return decide(message, calls.length);
    },
  });
  running.push(consumer);
  return { calls, consumer };
}

async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stateOf(ns: Namespace, messageId: string, wanted: string) {
  return eventually(async () => {
    const view = await backend.find(ns.tenantId, ns.name, messageId);
    return view?.state === wanted ? view : undefined;
  });
}

describe.skipIf(!url)('nats-jetstream backend', () => {
  beforeAll(async () => {
    nc = await connect({ servers: url! });
    backend = createNatsJetStreamBackend(nc, { prefix });
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.stop()));
  });

  afterAll(async () => {
    await backend?.close();
    if (!nc) return;
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(`${prefix}_`) || name === `KV_${prefix}_state`) await jsm.streams.delete(name);
    }
    await nc.close();
  });

  it('writes, then delivers the message with attempts counted', async () => {
    const ns = namespace();
    const r = row(ns, 'm1', { payload: { a: 1 } });
    const [outcome] = await backend.append([r]);
    expect(outcome).toMatchObject({
      replayed: false,
      message: { id: r.id, state: 'pending', backend: 'nats-jetstream' },
    });
    const { calls } = await consumeWith([ns]);
    await eventually(() => calls[0]);
    expect(calls[0]!.message).toMatchObject({ id: r.id, messageId: 'm1', attempts: 1, payload: '{"a":1}' });
    const view = await stateOf(ns, 'm1', 'delivered');
    expect(view.message.attempts).toBe(1);
    expect(view.history).toHaveLength(1);
    expect(view.deliveredAt).toBeTypeOf('number');
  });

  it('answers a replay of the same messageId and body with the first outcome', async () => {
    const ns = namespace();
    const first = row(ns, 'same');
    const [a] = await backend.append([first]);
    const [b] = await backend.append([row(ns, 'same')]);
    expect(b!.replayed).toBe(true);
    expect(b!.message.id).toBe(a!.message.id);
    expect(b!.message.createdAt.getTime()).toBe(first.created_at.getTime());
  });

  it('rejects a different body with 409 and writes nothing of the batch', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'taken')]);
    const attempt = backend.append([row(ns, 'fresh'), row(ns, 'taken', { hash: 'other' })]);
    await expect(attempt).rejects.toMatchObject({ name: 'AppError', code: 'IDEMPOTENCY_KEY_REUSED' });
    expect(await backend.find(ns.tenantId, ns.name, 'fresh')).toBeUndefined();
  });

  it('never delivers a delayed message before its due time, and delivers it soon after', async () => {
    const ns = namespace();
    const r = row(ns, 'later', { dueInMs: 1_500 });
    const [outcome] = await backend.append([r]);
    expect(outcome!.message.state).toBe('scheduled');
    const { calls } = await consumeWith([ns]);
    await eventually(() => calls[0]);
    expect(calls[0]!.at).toBeGreaterThanOrEqual(r.due_at.getTime());
    await stateOf(ns, 'later', 'delivered');
  });

  it('retries, then succeeds; the history shows both attempts', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'flaky')]);
    const { calls } = await consumeWith([ns], (_m, n) => (n === 1 ? retry(200) : ack()));
    const view = await stateOf(ns, 'flaky', 'delivered');
    expect(calls.map((c) => c.message.attempts)).toEqual([1, 2]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(200);
    expect(calls[1]!.history.map((h) => [h.attempt, h.outcome])).toEqual([[1, 'failed']]);
    expect(view.history.map((h) => [h.attempt, h.outcome])).toEqual([
      [1, 'failed'],
      [2, 'delivered'],
    ]);
    expect(view.lastError).toBe('boom');
  });

  it('marks a message dead when the decision says so, and revives it', async () => {
    const ns = namespace();
    const r = row(ns, 'doomed');
    await backend.append([r]);
    const { calls } = await consumeWith([ns], (_m, n) => (n === 1 ? dead() : ack()));
    const view = await stateOf(ns, 'doomed', 'dead');
    expect(view).toMatchObject({ lastError: 'gone', message: { attempts: 1 } });
    expect(view.deadAt).toBeTypeOf('number');
    await sleep(300);
    expect(calls).toHaveLength(1);

    const [plain] = await backend.append([row(ns, 'doomed')]);
    expect(plain).toMatchObject({ replayed: true, message: { state: 'dead' } });
    const [revived] = await backend.append([row(ns, 'doomed')], { revive: true });
    expect(revived).toMatchObject({ replayed: false, message: { id: r.id, state: 'pending' } });
    const after = await stateOf(ns, 'doomed', 'delivered');
    expect(calls).toHaveLength(2);
    expect(calls[1]!.message.attempts).toBe(1);
    expect(after.history).toHaveLength(2);
  });

  it('keeps order per key across a retry', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'k1', { key: 'order' }), row(ns, 'k2', { key: 'order' })]);
    let failed = false;
    const { calls } = await consumeWith([ns], (m) => {
      if (m.messageId === 'k1' && !failed) {
        failed = true;
        return retry(300);
      }
      return ack();
    });
    await stateOf(ns, 'k2', 'delivered');
    expect(calls.map((c) => c.message.messageId)).toEqual(['k1', 'k1', 'k2']);
  });

  it('hands a message held by a consumer that died out again after leaseMs', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'orphan')]);
    let release: (d: Decision) => void = () => {};
    const stuck = await consumeWith([ns], () => new Promise<Decision>((resolve) => (release = resolve)));
    await eventually(() => stuck.calls[0]);
    await stuck.consumer.stop();
    const taken = await consumeWith([ns]);
    const view = await stateOf(ns, 'orphan', 'delivered');
    expect(taken.calls[0]!.message.attempts).toBe(2);
    expect(taken.calls[0]!.at - stuck.calls[0]!.at).toBeGreaterThanOrEqual(LEASE_MS);
    // The dead consumer's late decision is fenced off.
    release(dead());
    await sleep(300);
    expect((await backend.find(ns.tenantId, ns.name, 'orphan'))?.state).toBe('delivered');
    expect(view.message.attempts).toBe(2);
  });

  it('fences a stale consumer: a decision after the lease expired changes nothing', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'slow')]);
    let staleDone = false;
    const { calls } = await consumeWith([ns], async (_m, n) => {
      if (n > 1) return ack();
      await sleep(LEASE_MS * 2.5);
      staleDone = true;
      return dead();
    });
    await stateOf(ns, 'slow', 'delivered');
    await eventually(() => (staleDone ? true : undefined));
    await sleep(300);
    const view = await backend.find(ns.tenantId, ns.name, 'slow');
    expect(view).toMatchObject({ state: 'delivered', lastError: null, message: { attempts: 2 } });
    expect(view!.history.map((h) => h.attempt)).toEqual([2]);
    expect(calls).toHaveLength(2);
  });

  it('publishes, on a replay, a message whose first write stopped before the stream', async () => {
    const ns = namespace();
    const r = row(ns, 'crashed');
    const core = createCore(nc, { prefix, replicas: 1, timeoutMs: 2_000 });
    const names = namespaceNames(prefix, ns.tenantId, ns.name);
    await core.ensureStream(names);
    // The state written, the publish never made (the writer crashed in between).
    await (await core.kv()).create(
      stateKey(names, 'crashed'),
      encodeJson(newState(streamMessageOf(r), 'pending')),
    );
    core.close();
    const { calls } = await consumeWith([ns]);
    await sleep(300);
    expect(calls).toHaveLength(0);
    const [replay] = await backend.append([row(ns, 'crashed')]);
    expect(replay).toMatchObject({ replayed: true, message: { id: r.id } });
    await stateOf(ns, 'crashed', 'delivered');
    expect(calls).toHaveLength(1);
  });

  it('serves the namespaces naming it (own, fallback or draining), re-read when they change', async () => {
    const other = namespace({ backend: 'postgres' });
    const fallback = namespace({ backend: 'postgres', fallbackBackend: 'nats-jetstream' });
    const draining = namespace({ backend: 'redis-streams', drainingBackends: ['nats-jetstream'] });
    await backend.append([row(other, 'not-mine'), row(fallback, 'mine'), row(draining, 'left')]);
    let list: Namespace[] = [other];
    let changed: () => void = () => {};
    const calls: string[] = [];
    const consumer = await backend.consume({
      logger,
      leaseMs: LEASE_MS,
      namespaces: async () => list,
      onNamespacesChanged: (listener) => {
        changed = listener;
        return () => {};
      },
      deliver: async (_ns, message) => {
        calls.push(message.messageId);
        return ack();
      },
    });
    running.push(consumer);
    await sleep(300);
    expect(calls).toEqual([]);
    list = [other, fallback, draining];
    changed();
    await stateOf(fallback, 'mine', 'delivered');
    await stateOf(draining, 'left', 'delivered');
    expect(calls.sort()).toEqual(['left', 'mine']);
  });

  it('stops while its pullers are still making their stream and consumers (a close right after a reconnect)', {
    timeout: 20_000,
  }, async () => {
    // Right after consume() the pullers are awaiting their stream and consumers; a stop then used
    // to close the pull each made next without ever reading it, and waited on it for ever.
    for (let i = 0; i < 3; i++) {
      const { consumer } = await consumeWith([namespace()]);
      running.splice(running.indexOf(consumer), 1);
      await consumer.stop();
    }
  });

  it('throws BackendUnavailableError quickly when the server cannot be reached', async () => {
    await expect(connect({ servers: '127.0.0.1:1', reconnect: false, timeout: 500 })).rejects.toThrow();
    const other = await connect({ servers: url! });
    const cut = createNatsJetStreamBackend(other, { prefix });
    await other.close();
    const ns = namespace();
    const started = Date.now();
    await expect(cut.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(cut.append([row(ns, 'x')])).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(Date.now() - started).toBeLessThan(3_000);
    await cut.close();
  });

  it('times out against a server that does not answer JetStream requests', async () => {
    const other = await connect({ servers: url! });
    // A request that never answers (a server that hangs) is cut at 3 × timeoutMs.
    const core = createCore(other, { prefix, replicas: 1, timeoutMs: 300 });
    const started = Date.now();
    await expect(core.guard('probe', () => new Promise(() => {}))).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
    expect(Date.now() - started).toBeLessThan(3_000);
    core.close();
    await other.close();
  });

  it('fails a call in flight as soon as the connection drops, not after its timeouts', async () => {
    // Its requests' answers are lost with the connection. Waiting for them (3 × timeoutMs, here far
    // longer than this test may take) could end after a reconnect, and a write begun before an
    // outage would go to the fallback while NATS is back and /health/ready answers 200.
    const target = new URL(url!);
    const proxy = await startTcpProxy(Number(target.port), target.hostname);
    // Reconnecting for ever, as the platform's connection does (platform/nats-client.ts).
    const other = await connect({ servers: `127.0.0.1:${proxy.port}`, maxReconnectAttempts: -1 });
    const cut = createNatsJetStreamBackend(other, { prefix, timeoutMs: 60_000 });
    try {
      await cut.ping();
      const pending = cut.append([row(namespace(), 'in-flight')]);
      await proxy.cut();
      await expect(pending).rejects.toBeInstanceOf(BackendUnavailableError);
      await expect(pending).rejects.toThrow('append: the NATS connection was lost');
    } finally {
      await cut.close();
      await other.close();
      await proxy.close();
    }
  });

  it('pings and reports lag', async () => {
    await backend.ping();
    const ns = namespace();
    await backend.append([row(ns, 'waiting', { dueInMs: 60_000 })]);
    const lag = await backend.lag();
    expect(lag.messages).toBeGreaterThanOrEqual(1);
    expect(lag.oldestMs).toBeGreaterThanOrEqual(0);
  });

  it('delivers 200 concurrent appends, each exactly by its id', async () => {
    const ns = namespace({ consumerConcurrency: 16 });
    const ids = Array.from({ length: 200 }, (_, i) => `c${i}`);
    const outcomes = await Promise.all(
      ids.map((id, i) => backend.append([row(ns, id, i % 2 === 0 ? { key: `k${i % 10}` } : {})])),
    );
    expect(outcomes.every(([o]) => o && !o.replayed)).toBe(true);
    const { calls } = await consumeWith([ns]);
    await eventually(
      () => (new Set(calls.map((c) => c.message.messageId)).size === 200 ? true : undefined),
      30_000,
    );
    expect(new Set(calls.map((c) => c.message.messageId))).toEqual(new Set(ids));
  });

  it('sweeps delivered state past its retention', async () => {
    const ns = namespace({ deliveredRetentionSeconds: 0 });
    await backend.append([row(ns, 'old')]);
    await consumeWith([ns]);
    await stateOf(ns, 'old', 'delivered');
    const core = createCore(nc, { prefix, replicas: 1, timeoutMs: 2_000 });
    expect(await sweepNamespace(core, ns)).toBe(1);
    core.close();
    expect(await backend.find(ns.tenantId, ns.name, 'old')).toBeUndefined();
  });

  it('drops what it holds for a deleted namespace and nothing of another', async () => {
    const gone = namespace();
    const kept = namespace({ tenantId: gone.tenantId });
    await backend.append([row(gone, 'g1'), row(gone, 'g2', { key: 'k' })]);
    await backend.append([row(kept, 'k1')]);
    await backend.drop(gone.tenantId, gone.name);
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.info(namespaceNames(prefix, gone.tenantId, gone.name).stream)).rejects.toThrow(
      /not found/i,
    );
    expect(await backend.find(gone.tenantId, gone.name, 'g1')).toBeUndefined();
    expect(await backend.find(gone.tenantId, gone.name, 'g2')).toBeUndefined();
    expect((await backend.find(kept.tenantId, kept.name, 'k1'))?.state).toBe('pending');
    // A namespace of the same name made again starts empty and works.
    const [again] = await backend.append([row(gone, 'g1')]);
    expect(again?.replayed).toBe(false);
  });

  // retire / reopen (a namespace that moved off NATS: backends/stream/prune.ts).
  it('is not retired while its stream holds a due, delayed, retrying or unsettled message', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'due')]);
    expect(await backend.retire(ns.tenantId, ns.name)).toBe(false);
    await backend.append([row(ns, 'later', { dueInMs: 1_500 })]);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { calls } = await consumeWith([ns], async (message) => {
      if (message.messageId === 'slow') await held;
      return message.messageId === 'flaky' && message.attempts === 1 ? retry(500) : ack();
    });
    await stateOf(ns, 'due', 'delivered');
    // the delayed one (nak'ed for the time left) is still in the stream
    expect(await backend.retire(ns.tenantId, ns.name)).toBe(false);
    await stateOf(ns, 'later', 'delivered');
    await backend.append([row(ns, 'slow')]);
    await eventually(() => (calls.some((c) => c.message.messageId === 'slow') ? true : undefined));
    expect(await backend.retire(ns.tenantId, ns.name)).toBe(false);
    release();
    await stateOf(ns, 'slow', 'delivered');
    await backend.append([row(ns, 'flaky')]);
    await stateOf(ns, 'flaky', 'retrying');
    expect(await backend.retire(ns.tenantId, ns.name)).toBe(false);
    await stateOf(ns, 'flaky', 'delivered');
    // A refused retire left the stream taking writes.
    await backend.append([row(ns, 'after')]);
    await stateOf(ns, 'after', 'delivered');
    await eventually(async () => ((await backend.retire(ns.tenantId, ns.name)) ? true : undefined));
  });

  it('refuses every write once retired, leaves nothing of it in the KV, and takes writes again once reopened', async () => {
    const ns = namespace();
    await backend.append([row(ns, 'before')]);
    await consumeWith([ns]);
    await stateOf(ns, 'before', 'delivered');
    await eventually(async () => ((await backend.retire(ns.tenantId, ns.name)) ? true : undefined));
    expect(await backend.retire(ns.tenantId, ns.name)).toBe(true);
    // the finished messages' states are let go (the sweep no longer walks a retired namespace)
    expect(await backend.find(ns.tenantId, ns.name, 'before')).toBeUndefined();
    // another process (its own stream cache) is refused too, and keeps no state of what it refused
    const other = createNatsJetStreamBackend(nc, { prefix });
    try {
      for (const r of [
        row(ns, 'late'),
        row(ns, 'late-delayed', { dueInMs: 1_000 }),
        row(ns, 'late-keyed', { key: 'k' }),
      ]) {
        await expect(other.append([r])).rejects.toBeInstanceOf(NamespaceRetiredError);
        expect(await other.find(ns.tenantId, ns.name, r.message_id)).toBeUndefined();
      }
      const jsm = await jetstreamManager(nc);
      expect(
        (await jsm.streams.info(namespaceNames(prefix, ns.tenantId, ns.name).stream)).state.messages,
      ).toBe(0);
      // Moved back: reopened, it takes writes and delivers them again.
      await other.reopen(ns.tenantId, ns.name);
      const [outcome] = await other.append([row(ns, 'back')]);
      expect(outcome?.replayed).toBe(false);
      await stateOf(ns, 'back', 'delivered');
    } finally {
      await other.close();
    }
  });

  it('retires a namespace never written here, refusing a write that comes after', async () => {
    const ns = namespace();
    expect(await backend.retire(ns.tenantId, ns.name)).toBe(true);
    await expect(backend.append([row(ns, 'late')])).rejects.toBeInstanceOf(NamespaceRetiredError);
  });

  it('says, when a retire lands between two publishes of a batch, which rows it stored all the same', async () => {
    const ns = namespace();
    const { calls } = await consumeWith([ns]);
    await backend.append([row(ns, 'old')]);
    await stateOf(ns, 'old', 'delivered');
    const { hash } = namespaceNames(prefix, ns.tenantId, ns.name);
    // 'b' is published; once it is delivered the namespace is retired; 'c' and 'd' come after.
    const gated = createNatsJetStreamBackend(
      gatePublishes(nc, `${prefix}.${hash}.`, 1, async () => {
        await stateOf(ns, 'b', 'delivered');
        await eventually(async () => ((await backend.retire(ns.tenantId, ns.name)) ? true : undefined));
      }),
      { prefix, timeoutMs: 5_000 },
    );
    try {
      const rows = [row(ns, 'old'), row(ns, 'b'), row(ns, 'c'), row(ns, 'd'), row(ns, 'c')];
      const refused = await gated.append(rows).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(NamespaceRetiredError);
      const { stored } = refused as NamespaceRetiredError;
      // One entry per row: the replay of a message stored before, the one published before the
      // retire; none for those refused, nor for the second 'c' (the same message).
      expect(stored).toHaveLength(rows.length);
      expect(stored.map((o) => o && [o.message.messageId, o.message.id, o.replayed])).toEqual([
        ['old', expect.any(String), true],
        ['b', rows[1]!.id, false],
        undefined,
        undefined,
        undefined,
      ]);
      // Nothing kept of the refused ones; 'b' was delivered once, here.
      expect(await backend.find(ns.tenantId, ns.name, 'c')).toBeUndefined();
      expect(await backend.find(ns.tenantId, ns.name, 'd')).toBeUndefined();
      expect(calls.map((c) => c.message.messageId)).toEqual(['old', 'b']);
    } finally {
      await gated.close();
      await backend.reopen(ns.tenantId, ns.name);
    }
  });

  it('lets a write and a retire racing each other either land before it (not retired) or be refused', async () => {
    const ns = namespace();
    await consumeWith([ns]);
    for (let round = 0; round < 10; round++) {
      const [written, retired] = await Promise.allSettled([
        backend.append([row(ns, `r${round}`, { dueInMs: 100 })]),
        backend.retire(ns.tenantId, ns.name),
      ]);
      if (retired.status !== 'fulfilled') throw retired.reason;
      if (written.status === 'fulfilled') {
        expect(retired.value).toBe(false);
        await stateOf(ns, `r${round}`, 'delivered');
      } else {
        expect(written.reason).toBeInstanceOf(NamespaceRetiredError);
        expect(retired.value).toBe(true);
        await backend.reopen(ns.tenantId, ns.name);
      }
    }
  });
});
