import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import type { Config } from './config/index.ts';
import type { AppContext } from './context.ts';
import { type Database, openDatabase } from './db/index.ts';
import { memoryCounterStore, redisCounterStore } from './http/index.ts';
import { createLogger, createMetrics, type Logger } from './observability/index.ts';
import { createRedisClient } from './redis-client.ts';

export type ContextOverrides = { db?: Database; logger?: Logger };

/** Opens every server the configuration names and returns the context modules share. */
export async function createContext(config: Config, overrides: ContextOverrides = {}): Promise<AppContext> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const db =
    overrides.db ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      poolSize: config.dbPoolSize,
    }));
  let redis: Redis | undefined;
  let nats: NatsConnection | undefined;
  try {
    // Clients are loaded only when configured, which keeps the embedded start fast.
    if (config.redisUrl) {
      redis = await createRedisClient(config.redisUrl, logger);
      await redis.connect();
    }
    if (config.natsUrl) {
      const { connect: connectNats } = await import('@nats-io/transport-node');
      nats = await connectNats({
        servers: config.natsUrl,
        name: 'mercato',
        maxReconnectAttempts: -1,
        timeout: 5000,
      });
    }
  } catch (error) {
    redis?.disconnect();
    await nats?.close();
    if (!overrides.db) await db.close();
    throw error;
  }
  return {
    config,
    db,
    logger,
    metrics: createMetrics(() => db.poolStats()),
    redis,
    nats,
    counters: redis ? redisCounterStore(redis, `${config.redisPrefix}counter:`) : memoryCounterStore(),
  };
}

/** Closes every connection the context opened. */
export async function closeContext(ctx: AppContext): Promise<void> {
  await Promise.allSettled([ctx.redis?.quit(), ctx.nats?.drain(), ctx.db.close()]);
}
