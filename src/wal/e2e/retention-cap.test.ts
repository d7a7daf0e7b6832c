import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { messageKey, nsKeys } from '../backends/redis-streams/keys.ts';
import { newSecret, type Receiver, until } from './receiver.ts';
import { type RedisWalApp, startRedisWalApp } from './redis-app-fixtures.ts';

// MERCATO_WAL_MAX_RETENTION_SECONDS holds a namespace stored with a longer retention (before the
// cap, or before the operator lowered it) to the cap on the stream backends too: the redis-streams
// consumer keeps a delivered message's state for the capped period, not the stored one.
const CAP = 604_800;

describe.skipIf(!testRedisUrl())('WAL retention cap on the redis-streams backend', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let admin: Record<string, string>;
  let receiver: Receiver;
  let redis: Redis;

  let w: RedisWalApp;

  beforeAll(async () => {
    w = await startRedisWalApp('wal-retention-cap', { MERCATO_WAL_MAX_RETENTION_SECONDS: String(CAP) });
    ({ t, tenant, admin, receiver, redis } = w);
  });
  afterAll(() => w?.close());

  it('keeps a delivered message at most the cap in a namespace stored with a longer retention', async () => {
    const made = await post(
      t.app,
      '/api/v1/wal/namespaces',
      {
        name: 'stored-long',
        backend: 'redis-streams',
        deliveredRetentionSeconds: 3600,
        targets: [{ name: 'hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 }],
      },
      admin,
    );
    expect(made.statusCode, made.body).toBe(201);
    // As stored before the cap: 68 years, which the API no longer takes.
    await sql`update wal.namespaces set delivered_retention_seconds = 2147483647
      where tenant_id = ${tenant.id} and name = 'stored-long'`.execute(t.ctx.db.kysely);

    const { base } = nsKeys(`${t.ctx.config.redisPrefix}wal`, tenant.id, 'stored-long');
    const deliveredTtl = async () => {
      const written = await post(
        t.app,
        '/api/v1/wal/write',
        { namespace: 'stored-long', payload: {} },
        admin,
      );
      expect(written.statusCode, written.body).toBe(202);
      const { messageId } = written.json<{ messageId: string }>();
      const state = async () =>
        (
          await t.app.inject({
            url: `/api/v1/wal/messages/${messageId}?namespace=stored-long`,
            headers: admin,
          })
        ).json<{ state: string }>().state;
      await until(async () => (await state()) === 'delivered', 'the delivered state');
      return redis.ttl(messageKey(base, messageId));
    };
    // The consumer learns of the stored change by notification: until then it keeps 3600 s.
    let ttl = await deliveredTtl();
    await until(async () => {
      if (ttl > 3600) return true;
      ttl = await deliveredTtl();
      return ttl > 3600;
    }, 'a delivery under the stored retention');
    expect(ttl).toBeGreaterThan(CAP - 60);
    expect(ttl).toBeLessThanOrEqual(CAP);
  });
});
