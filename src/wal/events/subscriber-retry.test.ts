import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import type { DomainEvent } from '../../platform/events/index.ts';
import { startTestApp, type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { newSecret, type Receiver, startReceiver, until } from '../e2e/receiver.ts';
import { createWal, type WalModule } from '../index.ts';

const stream = (backend: string, env: Record<string, string>) => [
  { backend, env: { ...env, MERCATO_EVENTS_BACKEND: backend } },
];
const BACKENDS: { backend: string; env: Record<string, string> }[] = [
  { backend: 'postgres', env: {} },
  ...(testRedisUrl() ? stream('redis-streams', { REDIS_URL: testRedisUrl()! }) : []),
  ...(testNatsUrl() ? stream('nats-jetstream', { NATS_URL: testNatsUrl()! }) : []),
];

// A tenant admin sets the retry policy of a system namespace for its own webhooks. A module's
// subscriber there (an internal target Mercato declares) is retried by Mercato's policy whatever
// the tenant set: one attempt a day apart would drop or postpone, say, the checkout's watchdog.
// That policy is the operator's (MERCATO_WAL_SYSTEM_RETRY_*): here 4 attempts, 50 ms apart.
const SYSTEM_RETRY = {
  MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS: '4',
  MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '50',
  MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '50',
};
describe.each(BACKENDS)('subscriber retries on $backend', ({ backend, env }) => {
  let t: TestApp;
  let wal: WalModule;
  let receiver: Receiver;
  let shop: TestTenant;
  let admin: Record<string, string>;
  /** Calls of the flaky subscriber per subject; it fails the first two of each, every one of `doomed-…`. */
  const calls = new Map<string, number>();
  const handled: string[] = [];

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startTestApp(
      { ...env, ...SYSTEM_RETRY, MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${new URL(receiver.url).port}` },
      {
        modules: async (ctx) => {
          wal = await createWal(ctx);
          wal.events.subscribe({
            name: 'test.flaky',
            topic: 'notification-events',
            types: ['mercato.notification.sent'],
            handle: async (_trx, event) => {
              const n = (calls.get(event.subject) ?? 0) + 1;
              calls.set(event.subject, n);
              if (n <= 2 || event.subject.startsWith('doomed-'))
                throw new Error(`failing call ${n} on purpose`);
              handled.push(event.subject);
            },
          });
          return [wal];
        },
      },
    );
    shop = await createTestTenant(t, `retries-${backend}`);
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    // The tenant's webhook never answers well; the tenant allows one attempt, a day after.
    receiver.failNext(1_000_000, 503);
    const retry = {
      strategy: 'fixed',
      baseDelayMs: 86_400_000,
      maxDelayMs: 86_400_000,
      maxAttempts: 1,
      jitter: 0,
    };
    const hook = { name: 'shop-hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 };
    const put = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/notification-events',
      payload: { targets: [hook], retry },
      headers: admin,
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json().retry).toEqual(retry);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const publish = (events: DomainEvent[]) =>
    withTenant(t.ctx.db.kysely as Kysely<unknown>, shop.id, (trx) =>
      wal.events.publish(trx, shop.id, 'notification-events', events),
    );
  const deadSubjects = async () => {
    const dlq = await t.app.inject({ url: '/api/v1/wal/namespaces/notification-events/dlq', headers: admin });
    expect(dlq.statusCode, dlq.body).toBe(200);
    return dlq.json<{ items: { headers: Record<string, string>; attempts: number }[] }>().items;
  };

  it("retries a module's subscriber by Mercato's policy, not the one attempt the tenant set", async () => {
    await publish([{ type: 'mercato.notification.sent', subject: 'flaky-1', data: { id: 'flaky-1' } }]);
    await until(
      async () =>
        handled.includes('flaky-1') ||
        (await deadSubjects()).some((d) => d.headers['ce-subject'] === 'flaky-1'),
      'the subscriber to handle the event, or the event to die',
    );
    expect(handled).toContain('flaky-1');
    expect(calls.get('flaky-1')).toBe(3);
  }, 60_000);

  it("dead-letters a module's subscriber after the operator's attempts, not the tenant's", async () => {
    await publish([{ type: 'mercato.notification.sent', subject: 'doomed-1', data: { id: 'doomed-1' } }]);
    let dead: Awaited<ReturnType<typeof deadSubjects>> = [];
    await until(async () => {
      dead = (await deadSubjects()).filter((d) => d.headers['ce-subject'] === 'doomed-1');
      return dead.length > 0;
    }, 'the event the subscriber always fails to die');
    expect(dead[0]!.attempts).toBe(4);
    expect(calls.get('doomed-1')).toBe(4);
  }, 60_000);

  it("keeps the tenant's policy for its own webhook", async () => {
    await publish([{ type: 'mercato.notification.failed', subject: 'hook-only', data: { id: 'hook-only' } }]);
    let dead: Awaited<ReturnType<typeof deadSubjects>> = [];
    await until(async () => {
      dead = (await deadSubjects()).filter((d) => d.headers['ce-subject'] === 'hook-only');
      return dead.length > 0;
    }, 'the event only the webhook takes to die after one attempt');
    expect(dead[0]!.attempts).toBe(1);
  });
});
