import type { Redis } from 'ioredis';
import type { Logger } from './observability/index.ts';

/**
 * Mercato's Redis client: commands issued in the same tick share one write (auto-pipelining:
 * many concurrent WAL writes cost one syscall, not one each), two retries per command while
 * reconnecting, and connection errors logged instead of thrown at the process. Connect with
 * `await client.connect()`.
 */
export async function createRedisClient(url: string, logger: Logger): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    enableAutoPipelining: true,
  });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  return redis;
}
