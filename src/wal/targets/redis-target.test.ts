import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../../platform/testing/index.ts';
import type { RedisTarget } from '../namespaces/namespace.ts';
import { deliverRedis, fillPlaceholders } from './redis-target.ts';
import { testDelivery } from './test-fixtures.ts';

const prefix = `mercato-test:targets:${process.pid}:${Date.now()}`;

function target(overrides: Partial<RedisTarget>): RedisTarget {
  return {
    type: 'redis',
    name: 'cache',
    enabled: true,
    command: 'DEL',
    key: `${prefix}:{/payload/sku}`,
    ...overrides,
  };
}

describe('redis target without Redis', () => {
  it('retries with a clear error when REDIS_URL is not configured', async () => {
    expect(await deliverRedis(undefined, target({}), testDelivery())).toEqual({
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
});

describe.skipIf(!testRedisUrl())('redis target', () => {
  let redis: Redis;
  let subscriber: Redis;

  beforeAll(() => {
    redis = new Redis(testRedisUrl()!);
    subscriber = new Redis(testRedisUrl()!);
  });

  afterAll(async () => {
    await redis.quit();
    await subscriber.quit();
  });

  it('DEL removes the key named by the message', async () => {
    await redis.set(`${prefix}:SKU-9`, 'cached');
    await redis.set(`${prefix}:SKU-10`, 'kept');
    const result = await deliverRedis(redis, target({}), testDelivery({ payload: { sku: 'SKU-9' } }));
    expect(result).toEqual({ outcome: 'delivered' });
    expect(await redis.exists(`${prefix}:SKU-9`)).toBe(0);
    expect(await redis.get(`${prefix}:SKU-10`)).toBe('kept');
    await redis.del(`${prefix}:SKU-10`);
  });

  it('PUBLISH reaches a subscriber, with the JSON payload by default', async () => {
    const channel = `${prefix}:invalidate`;
    const got = new Promise<string>((resolve) =>
      subscriber.on('message', (_, message: string) => resolve(message)),
    );
    await subscriber.subscribe(channel);
    const payload = { sku: 'SKU-7', price: 1200 };
    const result = await deliverRedis(
      redis,
      target({ command: 'PUBLISH', key: channel }),
      testDelivery({ payload }),
    );
    expect(result).toEqual({ outcome: 'delivered' });
    expect(JSON.parse(await got)).toEqual(payload);
    await subscriber.unsubscribe(channel);
  });

  it('PUBLISH sends a templated message when the target gives one', async () => {
    const channel = `${prefix}:templated`;
    const got = new Promise<string>((resolve) =>
      subscriber.once('message', (_, message: string) => resolve(message)),
    );
    await subscriber.subscribe(channel);
    await deliverRedis(
      redis,
      target({ command: 'PUBLISH', key: channel, message: 'product:{/payload/sku}' }),
      testDelivery({ payload: { sku: 'SKU-8' } }),
    );
    expect(await got).toBe('product:SKU-8');
    await subscriber.unsubscribe(channel);
  });
});
