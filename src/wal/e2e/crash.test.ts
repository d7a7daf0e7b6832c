import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadUntilKilled } from '../../cli/mercato-process.ts';
import {
  crashServers,
  embeddedDataDir,
  postgresClone,
  type ServerStorage,
  testDatabaseKind,
  testNatsUrl,
  testRedisUrl,
} from '../../platform/testing/index.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

const WRITERS = 20;
const LOAD_MS = 1_500;
const KILL_AFTER_MS = 750;

async function call(base: string, path: string, token: string, body: unknown) {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

// kill -9 of the real server in the middle of a write load: every acknowledged (202) write is
// delivered after a restart on the same data directory (at least once), including the deliveries
// the dead process had leased and was still waiting on.
function crashSuite(
  storage: () => Promise<ServerStorage>,
  backend: 'postgres' | 'redis-streams' | 'nats-jetstream' = 'postgres',
) {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  // Registered first, so it runs after the harness's afterAll has stopped the servers.
  afterAll(async () => {
    await receiver.close();
  });
  const crash = crashServers({
    storage,
    env: {
      MERCATO_WAL_LEASE_SECONDS: '3',
      // the operator opens the loopback receiver to HTTP targets
      MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1',
    },
  });

  it('loses no acknowledged write and redelivers what the dead process had leased', async () => {
    const first = await crash.start();
    const accessToken = await crash.adminToken(first.base);
    const created = await call(first.base, '/api/v1/wal/namespaces', accessToken, {
      name: 'crash',
      backend,
      retry: { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50, maxAttempts: 1000, jitter: 0 },
      // a long timeout keeps the hung delivery in flight until the kill
      targets: [
        {
          name: 'hook',
          type: 'http',
          url: receiver.url,
          secret: newSecret(),
          timeoutMs: 60_000,
          enabled: true,
        },
      ],
    });
    expect(created.status, await created.clone().text()).toBe(201);

    // messages of key "stuck" hang at the receiver: the server is mid-delivery when it dies
    receiver.hang((event) => (event.data as { stuck?: boolean } | null)?.stuck === true);
    const stuck: string[] = [];
    for (let i = 0; i < 3; i++) {
      const messageId = `stuck-${i}`;
      const response = await call(first.base, '/api/v1/wal/write', accessToken, {
        namespace: 'crash',
        key: 'stuck',
        messageId,
        payload: { stuck: true, i },
      });
      expect(response.status, await response.text()).toBe(202);
      stuck.push(messageId);
    }
    await until(() => receiver.hung() > 0, 'a delivery in flight at the receiver');

    // the load: WRITERS concurrent writers, each with distinct messageIds, killed half way
    const acked = new Set<string>();
    const { failed, exited } = await loadUntilKilled(
      first.server,
      { writers: WRITERS, loadMs: LOAD_MS, killAfterMs: KILL_AFTER_MS },
      async (w, n) => {
        const messageId = `w${w}-${n}`;
        const response = await call(first.base, '/api/v1/wal/write', accessToken, {
          namespace: 'crash',
          messageId,
          payload: { w, n },
        });
        await response.arrayBuffer();
        if (response.status !== 202) return false;
        acked.add(messageId);
        return true;
      },
    );
    expect(exited).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0); // the kill really landed in the middle of the load

    // from now on the receiver answers everything
    receiver.hang(undefined);
    const second = await crash.start();

    await until(
      () => [...acked].every((id) => receiver.ids().has(id)),
      `all ${acked.size} acknowledged writes delivered`,
      60_000,
    );
    const missing = [...acked].filter((id) => !receiver.ids().has(id));
    expect(missing).toEqual([]);

    // the dead process's lease on the stuck messages has to expire first (MERCATO_WAL_LEASE_SECONDS=3)
    await until(() => stuck.every((id) => receiver.ids().has(id)), 'the leased messages redelivered', 75_000);
    const order = receiver.received.map((r) => r.event.id).filter((id) => id.startsWith('stuck-'));
    expect([...new Set(order)]).toEqual(stuck);

    expect(await crash.stop(second.server), second.server.output()).toBe(0);
  }, 240_000);
}

describe.runIf(testDatabaseKind() === 'pglite')('WAL survives kill -9 (embedded PGlite)', () => {
  crashSuite(() => embeddedDataDir('mercato-wal-crash-'));
});

// The stream backends, once each (on PostgreSQL): Redis and NATS keep running, Mercato dies.
const streamBackends: { backend: 'redis-streams' | 'nats-jetstream'; env: Record<string, string> }[] = [
  ...(testRedisUrl() ? [{ backend: 'redis-streams' as const, env: { REDIS_URL: testRedisUrl()! } }] : []),
  ...(testNatsUrl() ? [{ backend: 'nats-jetstream' as const, env: { NATS_URL: testNatsUrl()! } }] : []),
];
describe.runIf(testDatabaseKind() === 'postgres' && streamBackends.length > 0).each(streamBackends)(
  'WAL survives kill -9 ($backend backend)',
  ({ backend, env }) => {
    crashSuite(async () => {
      const database = await postgresClone();
      return { ...database, env: { ...database.env, ...env } };
    }, backend);
  },
);

describe.runIf(testDatabaseKind() === 'postgres')('WAL survives kill -9 (PostgreSQL)', () => {
  // one worker: the killed process is the one that serves and delivers
  crashSuite(postgresClone);
});
