import type { Redis } from 'ioredis';
import type { RedisTarget } from '../namespaces/namespace.ts';
import { pointerDocument, resolvePointer } from './json-pointer.ts';
import type { Delivery, TargetResult } from './target-result.ts';

/** Thrown when a `{/json/pointer}` placeholder has no value in the delivery. */
class PlaceholderError extends Error {}

/** Fills `{/json/pointer}` placeholders from the delivery (`{/payload/sku}`, `{/tenantId}`, …). */
export function fillPlaceholders(template: string, delivery: Delivery): string {
  const document = pointerDocument(delivery);
  return template.replace(/\{(\/[^{}]*)\}/g, (_, pointer: string) => {
    const value = resolvePointer(document, pointer);
    if (value === undefined || value === null)
      throw new PlaceholderError(`placeholder {${pointer}} has no value`);
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

/**
 * Where a tenant's redis target may write: `<redisPrefix>t:<tenantId>:`, in front of every key and
 * channel it names. Mercato's own keys never start with `<redisPrefix>t:`, and no tenant's with
 * another's id, so a target can only touch its own tenant's keys.
 */
export function tenantRedisPrefix(redisPrefix: string, tenantId: string): string {
  return `${redisPrefix}t:${tenantId}:`;
}

/**
 * DEL `key` or PUBLISH `message` (default: the JSON payload) to channel `key`, for cache
 * invalidation; the key or channel is confined to the delivery's tenant (tenantRedisPrefix).
 */
export async function deliverRedis(
  redis: Redis | undefined,
  redisPrefix: string,
  target: RedisTarget,
  delivery: Delivery,
): Promise<TargetResult> {
  if (!redis) return { outcome: 'retry', error: 'REDIS_URL is not configured' };
  let key: string;
  let message: string;
  try {
    key = tenantRedisPrefix(redisPrefix, delivery.tenantId) + fillPlaceholders(target.key, delivery);
    message =
      target.message === undefined
        ? JSON.stringify(delivery.payload ?? null)
        : fillPlaceholders(target.message, delivery);
  } catch (error) {
    return { outcome: 'dead', error: (error as Error).message };
  }
  try {
    if (target.command === 'DEL') await redis.del(key);
    else await redis.publish(key, message);
    return { outcome: 'delivered' };
  } catch (error) {
    return { outcome: 'retry', error: `redis ${target.command} failed: ${(error as Error).message}` };
  }
}
