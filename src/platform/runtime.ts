import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import type { Config } from './config/index.ts';
import type { AppContext } from './context.ts';
import { type Database, openDatabase } from './db/index.ts';
import { counterStoreWithFallback, memoryCounterStore, redisCounterStore } from './http/index.ts';
import { connectNats, type NatsHandle } from './nats-client.ts';
import { createLogger, createMetrics, type Logger } from './observability/index.ts';
import { closeRedis, createRedisClient } from './redis-client.ts';

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
      statementTimeoutMs: config.dbStatementTimeoutMs,
      connectTimeoutSeconds: config.dbConnectTimeoutSeconds,
      onConnectRetry: (line) => logger.warn(line),
    }));
  let redis: Redis | undefined;
  let natsHandle: NatsHandle | undefined;
  try {
    // Clients are loaded only when configured, which keeps the embedded start fast. Neither
    // stops the start when its server is unreachable: they keep trying, /health/ready says so.
    if (config.redisUrl) {
      redis = await createRedisClient(config.redisUrl, logger);
      await redis.connect().catch(() => {});
    }
    if (config.natsUrl) natsHandle = await connectNats(config.natsUrl, logger);
  } catch (error) {
    redis?.disconnect();
    await natsHandle?.close();
    if (!overrides.db) await db.close();
    throw error;
  }
  const nats: NatsConnection | undefined = natsHandle?.current();
  const context: AppContext = {
    config,
    db,
    logger,
    metrics: createMetrics(() => db.poolStats()),
    redis,
    nats,
    natsHandle,
    counters: redis
      ? counterStoreWithFallback(redisCounterStore(redis, `${config.redisPrefix}counter:`), redis)
      : memoryCounterStore(),
  };
  // NATS reached later: the context holds the connection from then on.
  if (natsHandle && !nats) void natsHandle.ready.then((nc) => Object.assign(context, { nats: nc }));
  return context;
}

/** Closes every connection the context opened. */
export async function closeContext(ctx: AppContext): Promise<void> {
  await Promise.allSettled([
    ctx.redis ? closeRedis(ctx.redis) : undefined,
    ctx.natsHandle ? ctx.natsHandle.close() : ctx.nats?.drain(),
    ctx.db.close(),
  ]);
}
