import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../platform/http/index.ts';
import { testRedisUrl } from '../platform/testing/index.ts';
import {
  type AdmitRequest,
  type AdmitResult,
  dedupeKey,
  type FlashGate,
  type GateState,
  type UnitsBackListener,
} from './gate.ts';
import { createMemoryGate, type MemoryFlashGate } from './gate-memory.ts';
import { createRedisGate, type RedisFlashGate } from './gate-redis.ts';
import { gateKeys, unitsBackChannel } from './gate-redis-keys.ts';
import { type SoldOutMemoryGate, type SoldOutMemoryOptions, withSoldOutMemory } from './sold-out-memory.ts';

const url = testRedisUrl();
const TTL = 600;

/** A gate kind under test: instances of it as separate processes would see them. */
type Harness = {
  /** A gate instance with sold-out memory (for Redis: a client of its own, as another process has). */
  open(options?: SoldOutMemoryOptions): Promise<SoldOutMemoryGate>;
  /** Loses a campaign's state as a Redis flush or restart (or the embedded process's death) does. */
  lose(campaignId: string): Promise<void>;
  cleanup(): Promise<void>;
};

function memoryHarness(): Harness {
  // One process: every instance wraps the same in-process gate.
  const inner: MemoryFlashGate = createMemoryGate();
  return {
    open: async (options) => withSoldOutMemory(inner, options),
    lose: (campaignId) => inner.drop(campaignId),
    cleanup: () => inner.close(),
  };
}

function redisHarness(redisUrl: string): Harness {
  const prefix = `mercato-test:gate:${process.pid}:${randomUUID().slice(0, 8)}:`;
  const raw = new Redis(redisUrl);
  const gates: SoldOutMemoryGate[] = [];
  return {
    async open(options) {
      // A generous command timeout: the stampede queues many commands on a loaded test machine.
      const inner = await createRedisGate({ url: redisUrl, prefix, commandTimeoutMs: 5000 });
      const gate = withSoldOutMemory(inner, options);
      gates.push(gate);
      // Sold-out memory is trusted only once units-back notices arrive.
      await eventually(() => inner.listening);
      return gate;
    },
    async lose(campaignId) {
      const k = gateKeys(prefix, campaignId);
      await raw.del(k.remaining, k.customers, k.keys, k.loaded);
    },
    async cleanup() {
      await Promise.all(gates.map((g) => g.close()));
      const keys = await raw.keys(`${prefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      await raw.quit();
    },
  };
}

const kinds: Array<[string, (() => Harness) | undefined]> = [
  ['memory gate', memoryHarness],
  ['Redis gate', url ? () => redisHarness(url) : undefined],
];

const empty: GateState = { remaining: 0, perCustomer: [], keys: [] };
const units = (remaining: number): GateState => ({ ...empty, remaining });

function attempt(
  campaignId: string,
  customerId: string,
  overrides: Partial<AdmitRequest> = {},
): AdmitRequest {
  return {
    campaignId,
    customerId,
    key: randomUUID(),
    orderId: randomUUID(),
    quantity: 1,
    limit: 2,
    ...overrides,
  };
}

async function eventually(probe: () => boolean | Promise<boolean>): Promise<void> {
  const until = Date.now() + 10_000;
  while (!(await probe())) {
    if (Date.now() > until) throw new Error('eventually: timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Runs tasks with at most `width` in flight. */
async function inParallel<T>(count: number, width: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  return results;
}

describe.each(kinds)('%s', (_name, make) => {
  let h: Harness;
  beforeEach(() => {
    if (make) h = make();
  });
  afterEach(async () => {
    await h?.cleanup();
  });
  const run = make ? it : it.skip;

  run(
    'admits exactly the units under 20,000 concurrent attempts by 5,000 customers, none over the limit',
    async () => {
      const gates = await Promise.all([h.open(), h.open(), h.open(), h.open()]);
      const campaignId = randomUUID();
      expect(await gates[0]!.load(campaignId, units(1000), TTL)).toBe(true);

      const attempts = Array.from({ length: 20_000 }, (_, i) =>
        attempt(campaignId, `customer-${i % 5000}`, {
          key: `key-${i}`,
          // The last quarter asks for one unit, so a last single unit always finds a taker.
          quantity: i < 15_000 && Math.random() < 0.5 ? 2 : 1,
        }),
      );
      const results = await inParallel(attempts.length, 256, (i) =>
        gates[i % gates.length]!.admit(attempts[i]!),
      );

      const held = new Map<string, number>();
      const admitted: AdmitRequest[] = [];
      results.forEach((result, i) => {
        expect(['admitted', 'sold_out', 'limit_reached']).toContain(result.outcome);
        if (result.outcome !== 'admitted') return;
        const a = attempts[i]!;
        expect(result.orderId).toBe(a.orderId);
        admitted.push(a);
        held.set(a.customerId, (held.get(a.customerId) ?? 0) + a.quantity);
      });
      expect(admitted.reduce((sum, a) => sum + a.quantity, 0)).toBe(1000);
      expect(Math.max(...held.values())).toBeLessThanOrEqual(2);

      const snapshot = (await gates[1]!.snapshot(campaignId))!;
      expect(snapshot.remaining).toBe(0);
      expect(snapshot.perCustomer).toEqual(held);
      expect(snapshot.keys.size).toBe(admitted.length);
      for (const a of admitted)
        expect(snapshot.keys.get(dedupeKey(a.customerId, a.key))).toMatchObject({
          orderId: a.orderId,
          quantity: a.quantity,
        });

      const after = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          gates[i % gates.length]!.admit(attempt(campaignId, `late-${i}`)),
        ),
      );
      expect(after.every((r) => r.outcome === 'sold_out')).toBe(true);
    },
  );

  run('answers a repeated key with the first order id, even after selling out', async () => {
    const gate = await h.open();
    const campaignId = randomUUID();
    await gate.load(campaignId, units(2), TTL);

    const first = attempt(campaignId, 'alice');
    expect(await gate.admit(first)).toEqual({ outcome: 'admitted', orderId: first.orderId, remaining: 1 });
    const retry = { ...first, orderId: randomUUID() };
    expect(await gate.admit(retry)).toEqual({ outcome: 'duplicate', orderId: first.orderId });
    // The same Idempotency-Key from another customer is another attempt.
    expect(await gate.admit({ ...retry, customerId: 'bob' })).toMatchObject({
      outcome: 'admitted',
      remaining: 0,
    });
    expect(await gate.admit(attempt(campaignId, 'carol'))).toMatchObject({
      outcome: 'sold_out',
      remaining: 0,
    });

    expect(await gate.admit(retry)).toEqual({ outcome: 'duplicate', orderId: first.orderId });
    // Once the memory answers (no round trip), it answers the same.
    await eventually(() => gate.remembersSoldOut(campaignId));
    expect(await gate.admit(retry)).toEqual({ outcome: 'duplicate', orderId: first.orderId });
    expect(await gate.admit(attempt(campaignId, 'alice', { quantity: 2 }))).toEqual({
      outcome: 'limit_reached',
    });
    expect(await gate.admit(attempt(campaignId, 'dave'))).toMatchObject({ outcome: 'sold_out' });
    expect((await gate.snapshot(campaignId))!.remaining).toBe(0);
  });

  run('gives a unit back to the next buyer and wakes the sold-out memory of another instance', async () => {
    // Memory that would last an hour: only the units-back notice can clear it.
    const a = await h.open({ forgetAfterMs: 3_600_000 });
    const b = await h.open({ forgetAfterMs: 3_600_000 });
    const campaignId = randomUUID();
    await a.load(campaignId, units(1), TTL);
    const alice = attempt(campaignId, 'alice');
    expect(await a.admit(alice)).toMatchObject({ outcome: 'admitted', remaining: 0 });
    expect(await a.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'sold_out' });
    await eventually(() => a.remembersSoldOut(campaignId));

    // Alice's payment failed: another instance gives her unit back.
    expect(await b.giveBack(campaignId, 'alice', 1, alice.key)).toBe(true);
    await eventually(() => !a.remembersSoldOut(campaignId));
    const bob = attempt(campaignId, 'bob');
    expect(await a.admit(bob)).toEqual({ outcome: 'admitted', orderId: bob.orderId, remaining: 0 });

    // Giving back by key is idempotent: the key is no longer held.
    expect(await b.giveBack(campaignId, 'alice', 1, alice.key)).toBe(false);
    const snapshot = (await a.snapshot(campaignId))!;
    expect(snapshot.remaining).toBe(0);
    expect([...snapshot.perCustomer]).toEqual([['bob', 1]]);
    expect([...snapshot.keys.keys()]).toEqual([dedupeKey('bob', bob.key)]);
  });

  run(
    'releases an admission’s unit but keeps its key, whose retries stay its duplicate (also rebuilt, and from the sold-out memory)',
    async () => {
      const a = await h.open({ forgetAfterMs: 3_600_000 });
      const b = await h.open({ forgetAfterMs: 3_600_000 });
      const campaignId = randomUUID();
      await a.load(campaignId, units(1), TTL);
      const alice = attempt(campaignId, 'alice', { limit: 1 });
      expect(await a.admit(alice)).toMatchObject({ outcome: 'admitted', remaining: 0 });
      // Alice's window closed unpaid: her admission is released, its unit back to the next buyer.
      expect(await b.release(campaignId, 'alice', 1, alice.key)).toBe(true);
      const retry = { ...alice, orderId: randomUUID() };
      expect(await a.admit(retry)).toEqual({ outcome: 'duplicate', orderId: alice.orderId });
      // Once: a second release, and a give-back of the released key, give nothing.
      expect(await b.release(campaignId, 'alice', 1, alice.key)).toBe(false);
      expect(await b.giveBack(campaignId, 'alice', 1, alice.key)).toBe(false);
      // Alice may buy again under another key (the released unit no longer counts against her limit).
      const again = attempt(campaignId, 'alice', { limit: 1 });
      expect(await a.admit(again)).toMatchObject({ outcome: 'admitted', remaining: 0 });
      expect(await a.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'sold_out' });
      await eventually(() => a.remembersSoldOut(campaignId));
      // Sold out and Alice at her limit: the released key is still its duplicate, from memory too.
      expect(await a.admit(retry)).toEqual({ outcome: 'duplicate', orderId: alice.orderId });
      expect(a.refusalFor(campaignId, 'alice', alice.key, 1)).toBeUndefined();
      expect(a.refusalFor(campaignId, 'alice', 'never-used', 1)).toBe('limit_reached');
      const snapshot = (await b.snapshot(campaignId))!;
      expect(snapshot.remaining).toBe(0);
      expect(snapshot.perCustomer).toEqual(new Map([['alice', 1]]));
      expect(snapshot.keys.get(dedupeKey('alice', alice.key))).toMatchObject({
        orderId: alice.orderId,
        quantity: 0,
      });

      // Rebuilt from a record that has the released admission: its key holds 0 units.
      await h.lose(campaignId);
      const recorded: GateState = {
        remaining: 0,
        perCustomer: [['alice', 1]],
        keys: [
          [dedupeKey('alice', alice.key), alice.orderId, 1_700_000_000_000, 0],
          [dedupeKey('alice', again.key), again.orderId, 1_700_000_000_001, 1],
        ],
      };
      expect(await b.load(campaignId, recorded, TTL)).toBe(true);
      expect(await a.admit(retry)).toEqual({ outcome: 'duplicate', orderId: alice.orderId });
      expect(await a.release(campaignId, 'alice', 1, alice.key)).toBe(false);
      expect((await a.snapshot(campaignId))!.remaining).toBe(0);
    },
  );

  run('forgets a remembered sold-out campaign after a bounded time, notice or not', async () => {
    let clock = 1_000_000;
    const gate = await h.open({ forgetAfterMs: 1000, now: () => clock });
    const campaignId = randomUUID();
    await gate.load(campaignId, units(0), TTL);
    expect(await gate.admit(attempt(campaignId, 'alice'))).toMatchObject({ outcome: 'sold_out' });
    await eventually(() => gate.remembersSoldOut(campaignId));
    clock += 999;
    expect(gate.remembersSoldOut(campaignId)).toBe(true);
    clock += 2;
    expect(gate.remembersSoldOut(campaignId)).toBe(false);
    // The next attempt asks the gate again, which remembers again while still sold out.
    expect(await gate.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'sold_out' });
    expect(gate.remembersSoldOut(campaignId)).toBe(true);
  });

  run('answers not_loaded after losing its state; load restores it once; reset replaces it', async () => {
    const gate = await h.open();
    const other = await h.open();
    const campaignId = randomUUID();
    expect(await gate.admit(attempt(campaignId, 'alice'))).toEqual({ outcome: 'not_loaded' });
    expect(await gate.snapshot(campaignId)).toBeUndefined();
    expect(await gate.giveBack(campaignId, 'alice', 1)).toBe(false);

    expect(await gate.load(campaignId, units(5), TTL)).toBe(true);
    const alice = attempt(campaignId, 'alice');
    expect(await gate.admit(alice)).toMatchObject({ outcome: 'admitted', remaining: 4 });

    await h.lose(campaignId);
    expect(await gate.admit(attempt(campaignId, 'bob'))).toEqual({ outcome: 'not_loaded' });
    expect(await other.admit(alice)).toEqual({ outcome: 'not_loaded' });

    // Rebuilt from what PostgreSQL recorded.
    const recorded: GateState = {
      remaining: 4,
      perCustomer: [['alice', 1]],
      keys: [[dedupeKey('alice', alice.key), alice.orderId, 1_700_000_000_000, 1]],
    };
    const loads = await Promise.all([
      gate.load(campaignId, recorded, TTL),
      other.load(campaignId, recorded, TTL),
    ]);
    expect(loads.filter(Boolean)).toHaveLength(1);
    expect(await gate.load(campaignId, units(1000), TTL)).toBe(false);
    const restored = (await other.snapshot(campaignId))!;
    expect(restored.remaining).toBe(4);
    expect(restored.perCustomer).toEqual(new Map([['alice', 1]]));
    expect(restored.keys).toEqual(
      new Map([
        [dedupeKey('alice', alice.key), { orderId: alice.orderId, at: 1_700_000_000_000, quantity: 1 }],
      ]),
    );
    expect(await gate.admit({ ...alice, orderId: randomUUID() })).toEqual({
      outcome: 'duplicate',
      orderId: alice.orderId,
    });

    // Reset replaces whatever is there, in one step, however large the state.
    const customers = Array.from({ length: 2500 }, (_, i) => `customer-${i}`);
    await other.reset(
      campaignId,
      {
        remaining: 10,
        perCustomer: customers.map((c) => [c, 1]),
        // Without times or quantities: the load time and 1 unit each.
        keys: customers.map((c) => [dedupeKey(c, 'k'), `order-${c}`]),
      },
      TTL,
    );
    const replaced = (await gate.snapshot(campaignId))!;
    expect(replaced.remaining).toBe(10);
    expect(replaced.perCustomer.size).toBe(2500);
    expect(replaced.perCustomer.has('alice')).toBe(false);
    expect(replaced.keys.size).toBe(2500);
    expect(replaced.keys.get(dedupeKey('customer-2499', 'k'))).toMatchObject({
      orderId: 'order-customer-2499',
      quantity: 1,
    });
    expect(await gate.admit(attempt(campaignId, 'customer-7', { key: 'k' }))).toEqual({
      outcome: 'duplicate',
      orderId: 'order-customer-7',
    });
    expect(await gate.admit(alice)).toMatchObject({ outcome: 'admitted', remaining: 9 });

    await gate.drop(campaignId);
    expect(await other.admit(attempt(campaignId, 'bob'))).toEqual({ outcome: 'not_loaded' });
  });

  run('reports what it admitted in its snapshot', async () => {
    const gate = await h.open();
    const campaignId = randomUUID();
    await gate.load(campaignId, units(10), TTL);
    const admitted = [
      attempt(campaignId, 'alice', { quantity: 2 }),
      attempt(campaignId, 'bob'),
      attempt(campaignId, 'bob'),
    ];
    const results: AdmitResult[] = [];
    for (const a of admitted) results.push(await gate.admit(a));
    expect(results.map((r) => r.outcome)).toEqual(['admitted', 'admitted', 'admitted']);
    expect(await gate.admit(attempt(campaignId, 'bob'))).toEqual({ outcome: 'limit_reached' });

    const snapshot = (await gate.snapshot(campaignId))!;
    expect(snapshot.remaining).toBe(6);
    expect(snapshot.perCustomer).toEqual(
      new Map([
        ['alice', 2],
        ['bob', 2],
      ]),
    );
    expect(snapshot.keys.size).toBe(3);
    for (const a of admitted) {
      const held = snapshot.keys.get(dedupeKey(a.customerId, a.key))!;
      expect(held.orderId).toBe(a.orderId);
      expect(held.quantity).toBe(a.quantity);
      expect(Math.abs(held.at - Date.now())).toBeLessThan(60_000);
    }
    expect(typeof snapshot.version).toBe('string');
  });

  run('refuses malformed attempts and states', async () => {
    const gate = await h.open();
    const campaignId = randomUUID();
    await gate.load(campaignId, units(1), TTL);
    await expect(gate.admit(attempt(campaignId, 'alice', { quantity: 0 }))).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(gate.admit(attempt(campaignId, 'a:b'))).rejects.toBeInstanceOf(RangeError);
    await expect(gate.reset(campaignId, units(-1), TTL)).rejects.toBeInstanceOf(RangeError);
    const twice: GateState = {
      remaining: 1,
      perCustomer: [
        ['alice', 1],
        ['alice', 1],
      ],
      keys: [],
    };
    await expect(gate.reset(campaignId, twice, TTL)).rejects.toBeInstanceOf(RangeError);
    expect((await gate.snapshot(campaignId))!.remaining).toBe(1);
  });
});

describe('sold-out memory', () => {
  /** The memory gate with its notices held back until delivered, as pub/sub may deliver them late. */
  function lateNotices() {
    const inner = createMemoryGate();
    const queued: Array<[string | undefined, string | undefined]> = [];
    const listeners = new Set<UnitsBackListener>();
    inner.onUnitsBack((campaignId, version) => queued.push([campaignId, version]));
    const gate: MemoryFlashGate = {
      ...inner,
      listening: true,
      onUnitsBack(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const deliver = () => {
      for (const [campaignId, version] of queued.splice(0)) for (const l of listeners) l(campaignId, version);
    };
    return { inner, gate, deliver };
  }

  it('keeps what it remembers on a late notice of that state, and forgets on a notice of another', async () => {
    const { inner, gate, deliver } = lateNotices();
    const memory = withSoldOutMemory(gate, { forgetAfterMs: 3_600_000 });
    const campaignId = randomUUID();
    await memory.load(campaignId, units(1), TTL);
    const alice = attempt(campaignId, 'alice');
    expect(await memory.admit(alice)).toMatchObject({ outcome: 'admitted' });
    expect(await memory.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'sold_out' });
    await eventually(() => memory.remembersSoldOut(campaignId));
    // The notice of its own load arrives now: the state it announces is the one remembered.
    deliver();
    expect(memory.remembersSoldOut(campaignId)).toBe(true);
    // Another process gives alice's unit back; this one hears it late, then forgets.
    expect(await inner.giveBack(campaignId, 'alice', 1, alice.key)).toBe(true);
    expect(memory.remembersSoldOut(campaignId)).toBe(true);
    deliver();
    expect(memory.remembersSoldOut(campaignId)).toBe(false);
    expect(await memory.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'admitted' });
  });

  it('forgets everything when notices may have been missed', async () => {
    const inner = createMemoryGate();
    let listening = true;
    const listeners = new Set<UnitsBackListener>();
    const gate: MemoryFlashGate = {
      ...inner,
      get listening() {
        return listening;
      },
      onUnitsBack(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const memory = withSoldOutMemory(gate, { forgetAfterMs: 3_600_000 });
    const campaignId = randomUUID();
    await memory.load(campaignId, units(0), TTL);
    expect(await memory.admit(attempt(campaignId, 'alice'))).toMatchObject({ outcome: 'sold_out' });
    await eventually(() => memory.remembersSoldOut(campaignId));
    listening = false;
    expect(memory.remembersSoldOut(campaignId)).toBe(false);
    // Not listening: sold-out answers are not remembered.
    expect(await memory.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'sold_out' });
    expect(memory.remembersSoldOut(campaignId)).toBe(false);
    listening = true;
    for (const l of listeners) l(undefined);
    expect(memory.remembersSoldOut(campaignId)).toBe(false);
  });
});

describe.skipIf(!url)('Redis gate, Redis-specific', () => {
  const prefix = () => `mercato-test:gate:${process.pid}:${randomUUID().slice(0, 8)}:`;
  const open: Array<{ close(): Promise<void> }> = [];
  let raw: Redis;
  beforeEach(() => {
    raw = new Redis(url!);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()));
    await raw.quit();
  });
  const gateAt = async (at: string, p: string): Promise<RedisFlashGate> => {
    const gate = await createRedisGate({ url: at, prefix: p });
    open.push(gate);
    return gate;
  };
  const cleanup = async (p: string) => {
    const keys = await raw.keys(`${p}*`);
    if (keys.length > 0) await raw.del(...keys);
  };

  it('hashes every key of a campaign to one cluster slot, under the configured prefix', () => {
    const keys = gateKeys('shop-eu:', 'c1');
    expect(keys).toEqual({
      remaining: 'shop-eu:fs:{c1}:remaining',
      customers: 'shop-eu:fs:{c1}:customers',
      keys: 'shop-eu:fs:{c1}:keys',
      loaded: 'shop-eu:fs:{c1}:loaded',
    });
    expect(gateKeys('', 'a{b}').loaded).toBe('fs:{a%7Bb%7D}:loaded');
    expect(unitsBackChannel('shop-eu:')).toBe('shop-eu:fs:units-back');
  });

  it('expires every key of a campaign, including hashes first written by an admission', async () => {
    const p = prefix();
    try {
      const gate = await gateAt(url!, p);
      const campaignId = randomUUID();
      await gate.load(campaignId, units(3), 120);
      await gate.admit(attempt(campaignId, 'alice'));
      const k = gateKeys(p, campaignId);
      for (const key of [k.remaining, k.customers, k.keys, k.loaded]) {
        const ttl = await raw.pttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(120_000);
      }
      // Nothing of the staging is left behind.
      expect((await raw.keys(`${p}*staging*`)).length).toBe(0);
    } finally {
      await cleanup(p);
    }
  });

  it('answers sold out from memory without asking Redis', async () => {
    const p = prefix();
    try {
      const inner = await gateAt(url!, p);
      const gate = withSoldOutMemory(inner, { forgetAfterMs: 3_600_000 });
      await eventually(() => inner.listening);
      const campaignId = randomUUID();
      await gate.load(campaignId, units(0), TTL);
      expect(await gate.admit(attempt(campaignId, 'alice'))).toMatchObject({ outcome: 'sold_out' });
      await eventually(() => gate.remembersSoldOut(campaignId));
      // Redis loses the campaign without a notice: the memory still answers, the gate would not.
      const k = gateKeys(p, campaignId);
      await raw.del(k.remaining, k.customers, k.keys, k.loaded);
      expect(await gate.admit(attempt(campaignId, 'bob'))).toMatchObject({ outcome: 'sold_out' });
      expect(await inner.admit(attempt(campaignId, 'bob'))).toEqual({ outcome: 'not_loaded' });
    } finally {
      await cleanup(p);
    }
  });

  const expectUnavailable = async (promise: Promise<unknown>) => {
    const error = await promise.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('SERVICE_UNAVAILABLE');
    expect((error as AppError).status).toBe(503);
    expect((error as AppError).extras.retryAfterSeconds).toBe(1);
  };

  const everyMethodUnavailable = async (gate: FlashGate) => {
    const campaignId = randomUUID();
    await expectUnavailable(gate.admit(attempt(campaignId, 'alice')));
    await expectUnavailable(gate.giveBack(campaignId, 'alice', 1, 'k'));
    await expectUnavailable(gate.load(campaignId, units(1), TTL));
    await expectUnavailable(gate.reset(campaignId, units(1), TTL));
    await expectUnavailable(gate.snapshot(campaignId));
    await expectUnavailable(gate.drop(campaignId));
  };

  it('answers 503 SERVICE_UNAVAILABLE from every method when Redis is unreachable', async () => {
    const gate = withSoldOutMemory(await gateAt('redis://127.0.0.1:1', prefix()));
    await everyMethodUnavailable(gate);
    // Still unavailable on later calls (the client keeps reconnecting meanwhile).
    await everyMethodUnavailable(gate);
  });

  it('answers 503 SERVICE_UNAVAILABLE within its command timeout when Redis stops answering', async () => {
    const p = prefix();
    const proxy = await faultyProxy(new URL(url!));
    try {
      const gate = await gateAt(proxy.url, p);
      const campaignId = randomUUID();
      expect(await gate.load(campaignId, units(1), TTL)).toBe(true);
      // The network drops every answer from now on (the connection stays open).
      proxy.freeze();
      await everyMethodUnavailable(gate);
    } finally {
      await proxy.close();
      await cleanup(p);
    }
  });

  it('forgets what it remembers when its subscription drops, and resumes when Redis is back', async () => {
    const p = prefix();
    const proxy = await faultyProxy(new URL(url!));
    try {
      const inner = await gateAt(proxy.url, p);
      const gate = withSoldOutMemory(inner, { forgetAfterMs: 3_600_000 });
      await eventually(() => inner.listening);
      const campaignId = randomUUID();
      await gate.load(campaignId, units(0), TTL);
      expect(await gate.admit(attempt(campaignId, 'alice'))).toMatchObject({ outcome: 'sold_out' });
      await eventually(() => gate.remembersSoldOut(campaignId));

      // Notices sent while the subscriber reconnects would be lost: the memory goes with them.
      proxy.cut();
      await eventually(() => !inner.listening);
      expect(gate.remembersSoldOut(campaignId)).toBe(false);
      await eventually(() => inner.listening);
      expect(gate.remembersSoldOut(campaignId)).toBe(false);
      let answer: AdmitResult | undefined;
      await eventually(async () => {
        answer = await gate.admit(attempt(campaignId, 'bob')).catch(() => undefined);
        return answer !== undefined;
      });
      expect(answer).toMatchObject({ outcome: 'sold_out' });
      await eventually(() => gate.remembersSoldOut(campaignId));
    } finally {
      await proxy.close();
      await cleanup(p);
    }
  });

  it('answers 503 SERVICE_UNAVAILABLE when Redis accepts connections but never answers', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    const port = await new Promise<number>((resolve) =>
      silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)),
    );
    try {
      await everyMethodUnavailable(await gateAt(`redis://127.0.0.1:${port}`, prefix()));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

/** A TCP relay to a real Redis that can stop passing anything on, as a partitioned network does. */
async function faultyProxy(target: URL) {
  let frozen = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
    }
    client.on('data', (data) => {
      if (!frozen) upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (!frozen) client.write(data);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  return {
    url: `redis://127.0.0.1:${port}${target.pathname}`,
    freeze() {
      frozen = true;
    },
    /** Resets every connection open now (a Redis restart, as the clients see it). */
    cut() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
