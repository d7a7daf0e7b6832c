import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testNatsUrl, testRedisUrl } from '../platform/testing/index.ts';
import { testDatabaseKind } from '../platform/testing/test-databases.ts';
import { createWal } from '../wal/index.ts';
import { runMercato } from './mercato-process.ts';

const redisUrl = testRedisUrl();
const natsUrl = testNatsUrl();

// The server (in this process) and `mercato wal tail` (a child) share one PostgreSQL database.
describe.runIf(testDatabaseKind() === 'postgres' && redisUrl && natsUrl)(
  'mercato wal tail on stream backends',
  () => {
    let t: TestApp;
    let tenant: TestTenant;
    let admin: Record<string, string>;
    const env = () => ({ DATABASE_URL: t.databaseUrl, REDIS_URL: redisUrl, NATS_URL: natsUrl });

    beforeAll(async () => {
      t = await startTestApp(
        { REDIS_URL: redisUrl!, NATS_URL: natsUrl! },
        { modules: async (ctx) => [await createWal(ctx)] },
      );
      tenant = await createTestTenant(t, 'wal-tail');
      admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
    });
    afterAll(() => t?.close());

    it.each(['redis-streams', 'nats-jetstream'])(
      'prints messages written to %s as they come',
      async (backend) => {
        const name = `tail-${backend}`;
        const made = await post(t.app, '/api/v1/wal/namespaces', { name, backend }, admin);
        expect(made.statusCode, made.body).toBe(201);
        const tail = runMercato(['wal', 'tail', name, '--tenant', tenant.slug], env());
        try {
          // The follow starts after the CLI has connected: keep writing until a line shows.
          let n = 0;
          const written = new Set<string>();
          const writer = setInterval(() => {
            n += 1;
            const messageId = `tail-${backend}-${n}`;
            written.add(messageId);
            void post(t.app, '/api/v1/wal/write', { namespace: name, messageId, payload: { n } }, admin);
          }, 200);
          try {
            const [line] = await tail.waitFor(/\{"messageId":"tail-[^"]+".*\}/, 30_000);
            const printed = JSON.parse(line) as {
              messageId: string;
              backend: string;
              payload: { n: number };
            };
            expect(written.has(printed.messageId)).toBe(true);
            expect(printed).toMatchObject({ backend, state: 'pending' });
            expect(printed.payload.n).toBe(Number(printed.messageId.split('-').pop()));
          } finally {
            clearInterval(writer);
          }
        } finally {
          tail.child.kill('SIGINT');
          expect(await tail.exited).toBe(0);
        }
      },
      60_000,
    );
  },
);
