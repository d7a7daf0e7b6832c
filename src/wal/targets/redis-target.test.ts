import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisCounterStore } from '../../platform/http/index.ts';
import { testRedisUrl } from '../../platform/testing/index.ts';
import { messageKey, nsKeys } from '../backends/redis-streams/keys.ts';
import type { RedisTarget } from '../namespaces/namespace.ts';
import { deliverRedis, fillPlaceholders, tenantRedisPrefix } from './redis-target.ts';
import { testDelivery } from './test-fixtures.ts';

// MERCATO_REDIS_PREFIX of this file: its own, so runs and files sharing the Redis never meet.
const redisPrefix = `mercato-test:${process.pid}:${Date.now()}:`;
const TENANT_A = '00000000-0000-7000-8000-00000000000a';
const TENANT_B = '00000000-0000-7000-8000-00000000000b';
const inA = (key: string) => `${redisPrefix}t:${TENANT_A}:${key}`;

function target(overrides: Partial<RedisTarget>): RedisTarget {
  return {
    type: 'redis',
    name: 'cache',
    enabled: true,
    command: 'DEL',
    key: 'sku:{/payload/sku}',
    ...overrides,
  };
}

const deliveryOfA = (payload: unknown = {}) => testDelivery({ tenantId: TENANT_A, payload });

describe('redis target without Redis', () => {
  it('retries with a clear error when REDIS_URL is not configured', async () => {
    expect(await deliverRedis(undefined, redisPrefix, target({}), testDelivery())).toEqual({
      outcome: 'retry',
      error: 'REDIS_URL is not configured',
    });
  });

  it('fills placeholders from the message and refuses a placeholder without a value', () => {
    const delivery = testDelivery({ payload: { sku: 'SKU-1', n: 3 } });
    expect(fillPlaceholders('p:{/payload/sku}:{/payload/n}:{/tenantId}', delivery)).toBe(
      `p:SKU-1:3:${delivery.tenantId}`,
    );
    expect(() => fillPlaceholders('p:{/payload/missing}', delivery)).toThrow(
      'placeholder {/payload/missing} has no value',
    );
  });

  it('confines a tenant to <MERCATO_REDIS_PREFIX>t:<tenantId>:', () => {
    expect(tenantRedisPrefix('mercato:', TENANT_A)).toBe(`mercato:t:${TENANT_A}:`);
  });
});

describe.skipIf(!testRedisUrl())('redis target', () => {
  let redis: Redis;
  let subscriber: Redis;

  beforeAll(() => {
    redis = new Redis(testRedisUrl()!);
    subscriber = new Redis(testRedisUrl()!);
  });

  afterAll(async () => {
    const keys = await redis.keys(`${redisPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    await subscriber.quit();
  });

  /** The messages received on each channel until `sentinel` arrives on the last one. */
  async function received(channels: string[], act: () => Promise<void>, sentinel: string) {
    const got: [string, string][] = [];
    const done = new Promise<void>((resolve) => {
      const listener = (channel: string, message: string) => {
        got.push([channel, message]);
        if (message === sentinel) {
          subscriber.off('message', listener);
          resolve();
        }
      };
      subscriber.on('message', listener);
    });
    await subscriber.subscribe(...channels);
    await act();
    // Redis delivers a subscriber's messages in the order it ran the PUBLISHes: anything the act
    // published arrives before this.
    await redis.publish(channels.at(-1)!, sentinel);
    await done;
    await subscriber.unsubscribe(...channels);
    return got;
  }

  it("DEL removes the key named by the message, under the tenant's prefix only", async () => {
    await redis.set(inA('sku:SKU-9'), 'cached');
    await redis.set(inA('sku:SKU-10'), 'kept');
    await redis.set('sku:SKU-9', 'not the tenant’s');
    const result = await deliverRedis(redis, redisPrefix, target({}), deliveryOfA({ sku: 'SKU-9' }));
    expect(result).toEqual({ outcome: 'delivered' });
    expect(await redis.exists(inA('sku:SKU-9'))).toBe(0);
    expect(await redis.get(inA('sku:SKU-10'))).toBe('kept');
    expect(await redis.get('sku:SKU-9')).toBe('not the tenant’s');
    await redis.del('sku:SKU-9');
  });

  it("cannot clear another tenant's login lock: the DEL lands under the tenant's own prefix", async () => {
    const counters = redisCounterStore(redis, `${redisPrefix}counter:`);
    const lock = 'login:bshop:admin@bshop.test';
    for (let i = 0; i < 5; i++) await counters.increment(lock, 900);
    const lockKey = `${redisPrefix}counter:${lock}`;
    await redis.set(inA(lockKey), 'decoy');
    const result = await deliverRedis(
      redis,
      redisPrefix,
      target({ key: '{/payload/key}' }),
      deliveryOfA({ key: lockKey }),
    );
    expect(result).toEqual({ outcome: 'delivered' });
    expect(await counters.peek(lock)).toMatchObject({ count: 5 });
    expect(await redis.exists(inA(lockKey))).toBe(0);
  });

  it("cannot destroy another tenant's scheduled redis-streams message or redis-target key", async () => {
    const scheduled = messageKey(nsKeys(`${redisPrefix}wal`, TENANT_B, 'orders').base, 'msg-b');
    const ofB = `${redisPrefix}t:${TENANT_B}:sku:1`;
    await redis.hset(scheduled, 'payload', '{}');
    await redis.set(ofB, 'cached');
    for (const key of [scheduled, ofB, `../${ofB}`, `\r\nDEL ${ofB}`]) {
      const result = await deliverRedis(redis, redisPrefix, target({ key }), deliveryOfA());
      expect(result).toEqual({ outcome: 'delivered' });
    }
    expect(await redis.hget(scheduled, 'payload')).toBe('{}');
    expect(await redis.get(ofB)).toBe('cached');
  });

  it("PUBLISH reaches the tenant's channel, with the JSON payload by default, and no other channel", async () => {
    const payload = { sku: 'SKU-7', price: 1200 };
    const got = await received(
      ['invalidate', inA('invalidate')],
      async () => {
        const result = await deliverRedis(
          redis,
          redisPrefix,
          target({ command: 'PUBLISH', key: 'invalidate' }),
          deliveryOfA(payload),
        );
        expect(result).toEqual({ outcome: 'delivered' });
      },
      'end',
    );
    expect(got).toEqual([
      [inA('invalidate'), JSON.stringify(payload)],
      [inA('invalidate'), 'end'],
    ]);
  });

  it("PUBLISH to another tenant's channel lands on the sender's own", async () => {
    const channelOfB = `${redisPrefix}t:${TENANT_B}:invalidate`;
    const got = await received(
      [inA(channelOfB), channelOfB],
      async () => {
        await deliverRedis(
          redis,
          redisPrefix,
          target({ command: 'PUBLISH', key: channelOfB, message: 'x' }),
          deliveryOfA(),
        );
      },
      'end',
    );
    expect(got).toEqual([
      [inA(channelOfB), 'x'],
      [channelOfB, 'end'],
    ]);
  });

  it('PUBLISH sends a templated message when the target gives one', async () => {
    const got = await received(
      [inA('templated')],
      async () => {
        await deliverRedis(
          redis,
          redisPrefix,
          target({ command: 'PUBLISH', key: 'templated', message: 'product:{/payload/sku}' }),
          deliveryOfA({ sku: 'SKU-8' }),
        );
      },
      'end',
    );
    expect(got.map(([, message]) => message)).toEqual(['product:SKU-8', 'end']);
  });
});
