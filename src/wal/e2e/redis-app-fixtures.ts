import { Redis } from 'ioredis';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createWal, type WalModule } from '../index.ts';
import { type Receiver, startReceiver } from './receiver.ts';

export type RedisWalApp = {
  t: TestApp;
  tenant: TestTenant;
  /** The tenant admin's Authorization header. */
  admin: Record<string, string>;
  receiver: Receiver;
  /** A client of the test Redis, for looking at what the backend stored. */
  redis: Redis;
  /** The WAL module the app runs. */
  wal: WalModule;
  close(): Promise<void>;
};

/**
 * The WAL alone on the test Redis (redis-streams on), private targets allowed so `receiver` can
 * take its deliveries, with a tenant named `slug` and its admin signed in. `env` adds settings
 * (NATS_URL adds nats-jetstream), `options` the WAL's (createWal).
 */
export async function startRedisWalApp(
  slug: string,
  env: Record<string, string> = {},
  options: Parameters<typeof createWal>[1] = {},
): Promise<RedisWalApp> {
  let wal: WalModule | undefined;
  const t = await startTestApp(
    { REDIS_URL: testRedisUrl()!, MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1', ...env },
    {
      modules: async (ctx) => {
        wal = await createWal(ctx, options);
        return [wal];
      },
    },
  );
  const tenant = await createTestTenant(t, slug);
  const admin = {
    authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}`,
  };
  const receiver = await startReceiver();
  const redis = new Redis(testRedisUrl()!);
  return {
    t,
    tenant,
    admin,
    receiver,
    redis,
    wal: wal!,
    async close() {
      await t.close();
      await receiver.close();
      redis.disconnect();
    },
  };
}

/** The Redis keys the redis-streams backend holds for a namespace (the default key prefix). */
export async function namespaceRedisKeys(
  redis: Redis,
  tenantId: string,
  namespace: string,
): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await redis.scan(
      cursor,
      'MATCH',
      `mercato:wal:{${tenantId}/${namespace}}*`,
      'COUNT',
      1000,
    );
    found.push(...page);
    cursor = next;
  } while (cursor !== '0');
  return found;
}
