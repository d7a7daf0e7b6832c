import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { dedupeKey, type GateState } from './gate.ts';
import { createRedisGate, type RedisFlashGate } from './gate-redis.ts';
import { clientOptions } from './gate-redis-client.ts';
import { GateCommands } from './gate-redis-commands.ts';
import { SNAPSHOT_CHUNK, snapshotOnRedis } from './gate-redis-snapshot.ts';
import { type SoldOutMemoryGate, withSoldOutMemory } from './sold-out-memory.ts';

// A sale sold out to 100,000 buyers: its gate holds a hash field per buyer and one per admitted
// key. Before, the snapshot (reconciliation, the sold-out memory) read both whole in one script
// (HGETALL): measured, it kept every other client of the shared Redis waiting about 0.5 s, and its
// reply came back after the gate's 150 ms command timeout, so the snapshot always failed and the
// sold-out memory asked again on the next sold-out answer. Now it reads them in HSCAN chunks.
const BUYERS = 100_000;
/** HSCAN's COUNT is a hint: a reply may carry a bucket's worth more. Twice it is a generous bound. */
const MOST_FIELDS_PER_REPLY = 2 * SNAPSHOT_CHUNK;

/** Elements in a reply, nested arrays counted element by element. */
const size = (reply: unknown): number =>
  Array.isArray(reply) ? reply.reduce((n: number, r) => n + size(r), 0) : 1;

describe.skipIf(!testRedisUrl())('a snapshot of a sale with 100,000 buyers', () => {
  const prefix = `mercato-test:fs-snapshot:${process.pid}:${randomUUID().slice(0, 8)}:`;
  const campaignId = uuidv7();
  const buyers = Array.from({ length: BUYERS }, (_, i) => ({
    customerId: `c${i}-${randomUUID()}`,
    key: randomUUID(),
    orderId: uuidv7(),
  }));
  let gate: SoldOutMemoryGate;
  let raw: RedisFlashGate;
  let redis: Redis;
  let largest = 0;

  beforeAll(async () => {
    raw = await createRedisGate({ url: testRedisUrl()!, prefix });
    gate = withSoldOutMemory(raw);
    const state: GateState = {
      remaining: 0,
      perCustomer: buyers.map((b) => [b.customerId, 1]),
      keys: buyers.map((b) => [dedupeKey(b.customerId, b.key), b.orderId, Date.now(), 1]),
    };
    // Loaded by a gate of its own with a generous command timeout: 100 staging calls of 1,000
    // fields each can pass the 150 ms bound on a loaded machine, and only the reads are tested.
    const loader = await createRedisGate({ url: testRedisUrl()!, prefix, commandTimeoutMs: 10_000 });
    try {
      expect(await loader.load(campaignId, state, 600)).toBe(true);
    } finally {
      await loader.close();
    }
    // The gate's own options (150 ms command timeout); every reply's size recorded.
    redis = new Redis(testRedisUrl()!, clientOptions(150));
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command, stream) => {
      void command.promise.then(
        (reply) => {
          largest = Math.max(largest, size(reply));
        },
        () => {},
      );
      return send(command, stream);
    }) as typeof redis.sendCommand;
  }, 120_000);
  afterAll(async () => {
    await gate?.drop(campaignId).catch(() => {});
    await gate?.close();
    redis?.disconnect();
  });

  it('is read whole, in replies of a chunk at most', { timeout: 60_000 }, async () => {
    const snapshot = await snapshotOnRedis(new GateCommands(redis, prefix), campaignId);
    expect(snapshot?.remaining).toBe(0);
    expect(snapshot?.perCustomer.size).toBe(BUYERS);
    expect(snapshot?.keys.size).toBe(BUYERS);
    const last = buyers[BUYERS - 1]!;
    expect(snapshot?.keys.get(dedupeKey(last.customerId, last.key))?.orderId).toBe(last.orderId);
    expect(snapshot?.version).not.toBe('');
    // A reply of HSCAN: its cursor and a field, value pair per field.
    expect(largest).toBeGreaterThan(1);
    expect(largest).toBeLessThanOrEqual(1 + 2 * MOST_FIELDS_PER_REPLY);
  });

  it("lets the sold-out memory answer the sale's buyers", { timeout: 60_000 }, async () => {
    const stranger = () => ({
      campaignId,
      customerId: `new-${randomUUID()}`,
      key: randomUUID(),
      orderId: uuidv7(),
      quantity: 1,
      limit: 1,
    });
    // Sold-out answers keep the sale remembered while its snapshot is read (within 10 s).
    const deadline = Date.now() + 10_000;
    while (!gate.remembersSoldOut(campaignId) && Date.now() < deadline) {
      expect((await gate.admit(stranger())).outcome).toBe('sold_out');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(gate.remembersSoldOut(campaignId)).toBe(true);
    const buyer = buyers[12_345]!;
    const replay = { ...stranger(), customerId: buyer.customerId, key: buyer.key };
    expect(await gate.admit(replay)).toEqual({ outcome: 'duplicate', orderId: buyer.orderId });
    expect(gate.refusalFor(campaignId, buyer.customerId, randomUUID(), 1)).toBe('limit_reached');
  });
});
