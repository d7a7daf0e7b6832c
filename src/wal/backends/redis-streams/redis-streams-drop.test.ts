import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../../../platform/testing/index.ts';
import { NamespaceRetiredError } from '../stream/contract.ts';
import { nsKeys } from './keys.ts';
import { ack, consumerDeps, eventually, harness, row, testNamespace } from './test-fixtures.ts';

const url = testRedisUrl();

// A namespace's keys are dropped (its deletion) while consumers still serve it: they hear of the
// deletion later (a NOTIFY, a reload), and must not make its stream again meanwhile.
describe.skipIf(!url)('redis-streams backend, streams dropped and lost', () => {
  let h: Awaited<ReturnType<typeof harness>>;
  beforeEach(async () => {
    h = await harness(url!);
  });
  afterEach(async () => {
    await h.cleanup();
  });

  /**
   * A MONITOR connection: every command Redis runs from when it resolves. Monitor lines that come
   * in before ioredis marks the connection as monitoring (right after MONITOR's OK, on a busy Redis)
   * or after it is disconnected find no command waiting, and ioredis emits each as an error
   * ("Command queue state error"); `redis.monitor()` rejects on the first. They are ignored: the
   * listener is on before the connection opens.
   */
  const monitorRedis = async () => {
    const monitor = new Redis(url!, { monitor: true, lazyConnect: true });
    monitor.on('error', () => {});
    const monitoring = new Promise((resolve) => monitor.once('monitoring', resolve));
    await monitor.connect();
    await monitoring;
    return monitor;
  };

  const keysOf = async (base: string) => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, page] = await h.redis.scan(cursor, 'MATCH', `${base}*`, 'COUNT', 1000);
      found.push(...page);
      cursor = next;
    } while (cursor !== '0');
    return found;
  };

  it('leaves no key of a dropped namespace behind though its consumer reads it until told', async () => {
    const alive = testNamespace({ name: 'alive' });
    const gone = testNamespace({ tenantId: alive.tenantId, name: 'gone' });
    const goneKeys = nsKeys(h.prefix, gone.tenantId, gone.name);
    const backend = h.backend();
    await backend.append([row(alive, 'a1'), row(gone, 'g1')]);
    let served = [alive, gone];
    let changed: (() => void) | undefined;
    const { deps, calls } = consumerDeps([], () => ack());
    deps.namespaces = async () => served;
    deps.onNamespacesChanged = (listener) => {
      changed = listener;
      return () => {};
    };
    await backend.consume(deps);
    await eventually(async () => (await backend.find(gone.tenantId, gone.name, 'g1'))?.state === 'delivered');
    await eventually(
      async () => (await backend.find(alive.tenantId, alive.name, 'a1'))?.state === 'delivered',
    );

    // Every command Redis runs from now on: the consumer's answer to the dropped stream is seen,
    // a group made on it, or its next blocking read without it.
    const monitor = await monitorRedis();
    let unlinked = false;
    let answered = false;
    monitor.on('monitor', (_time: string, args: string[]) => {
      const [command, ...rest] = args;
      const name = command?.toLowerCase();
      if (name === 'unlink' && rest.includes(goneKeys.stream)) unlinked = true;
      if (name === 'xgroup' && rest[1] === goneKeys.stream) answered = true;
      const blocking = rest.some((a) => a.toLowerCase() === 'block');
      if (unlinked && name === 'xreadgroup' && blocking && !rest.includes(goneKeys.stream)) answered = true;
    });
    try {
      await backend.drop(gone.tenantId, gone.name, { createdAt: gone.createdAt });
      // The consumer, not yet told, finds the stream missing under its read and acts on it.
      await eventually(() => answered);
      served = [alive];
      changed!();
      await backend.append([row(alive, 'a2')]);
      await eventually(() => calls.some((c) => c.message.messageId === 'a2'));
      await backend.close();
      expect(await keysOf(goneKeys.base)).toEqual([]);
    } finally {
      monitor.disconnect();
    }
  });

  it('delivers the first write of a stream not made yet, and writes after the stream was lost', async () => {
    const ns = testNamespace();
    const keys = nsKeys(h.prefix, ns.tenantId, ns.name);
    const backend = h.backend();
    const { deps, calls } = consumerDeps([ns], () => ack());
    await backend.consume(deps);
    // Made by the consumer, with its group: its one blocking read covers it.
    expect(await keysOf(keys.base)).toEqual([keys.stream]);
    const delivered = (messageId: string) =>
      eventually(() => calls.some((c) => c.message.messageId === messageId));

    await backend.append([row(ns, 'first')]);
    await delivered('first');
    // Redis lost the namespace's keys (a flush, a restart without persistence) while serving it.
    await h.redis.del(...(await keysOf(keys.base)));
    await backend.append([row(ns, 'after-loss')]);
    await delivered('after-loss');
    // The first message of a stream lost again is a delayed one: moved into a stream made for it.
    await h.redis.del(...(await keysOf(keys.base)));
    await backend.append([row(ns, 'delayed', { dueAt: Date.now() + 100 })]);
    await delivered('delayed');
    expect(calls.map((c) => c.message.messageId)).toEqual(['first', 'after-loss', 'delayed']);
  });

  it('sends no command for a namespace never written to while it is idle', async () => {
    const ns = testNamespace();
    const keys = nsKeys(h.prefix, ns.tenantId, ns.name);
    const monitor = await monitorRedis();
    const groupCommands: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'xgroup' && args[2] === keys.stream) groupCommands.push(args);
    });
    try {
      const backend = h.backend();
      const { deps, calls } = consumerDeps([ns], () => ack());
      await backend.consume(deps);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // Its group made once at the start, then read by the one blocking read: no polling.
      expect(groupCommands.length).toBeLessThanOrEqual(1);
      await backend.append([row(ns, 'first')]);
      await eventually(() => calls.some((c) => c.message.messageId === 'first'));
    } finally {
      monitor.disconnect();
    }
  });

  it('refuses late writes to a dropped namespace, and serves one made again under its name', async () => {
    const first = testNamespace({ createdAt: new Date(Date.now() - 60_000).toISOString() });
    const keys = nsKeys(h.prefix, first.tenantId, first.name);
    const backend = h.backend();
    let served = [first];
    let changed: (() => void) | undefined;
    const { deps, calls } = consumerDeps([], () => ack());
    deps.namespaces = async () => served;
    deps.onNamespacesChanged = (listener) => {
      changed = listener;
      return () => {};
    };
    await backend.consume(deps);
    const delivered = (messageId: string) =>
      eventually(() => calls.some((c) => c.message.messageId === messageId));
    await backend.append([row(first, 'one')]);
    await delivered('one');

    await backend.drop(first.tenantId, first.name, { createdAt: first.createdAt });
    // A writer that has not heard of the deletion is refused (it reads the namespace again: 404).
    await expect(backend.append([row(first, 'late')])).rejects.toBeInstanceOf(NamespaceRetiredError);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await keysOf(keys.base)).toEqual([]);

    // Made again under the same name: its consumer, told, makes its stream again.
    const again = { ...first, createdAt: new Date().toISOString() };
    served = [again];
    changed!();
    await eventually(async () => (await h.redis.exists(keys.dropped)) === 0);
    await backend.append([row(again, 'two')]);
    await delivered('two');
  });

  it('lets a write to a namespace made again under its name through once reopened', async () => {
    const first = testNamespace({ createdAt: new Date(Date.now() - 60_000).toISOString() });
    const again = { ...first, createdAt: new Date().toISOString() };
    const backend = h.backend();
    await backend.append([row(first, 'one')]);
    await backend.drop(first.tenantId, first.name, { createdAt: first.createdAt });
    // The writer's path (write/reread-namespace.ts): refused, the namespace read again, reopened.
    await expect(backend.append([row(again, 'two')])).rejects.toBeInstanceOf(NamespaceRetiredError);
    await backend.reopen(again.tenantId, again.name);
    await backend.append([row(again, 'two')]);
    const { deps, calls } = consumerDeps([again], () => ack());
    await backend.consume(deps);
    await eventually(() => calls.some((c) => c.message.messageId === 'two'));
    expect(calls.map((c) => c.message.messageId)).toEqual(['two']);
  });
});
