import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { createNatsJetStreamBackend } from '../backends/nats-jetstream/index.ts';
import { createGroupCommitter } from '../backends/postgres/group-commit.ts';
import { createRedisStreamsBackend } from '../backends/redis-streams/index.ts';
import type { StreamBackend } from '../backends/stream/contract.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { createAppender } from '../write/append.ts';
import { toRows } from '../write/prepare.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { proxiedBackend } from './proxied-backend.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// A write refused by a backend as retired there, whose namespace names that backend again (it
// moved back), reopens it (write/reread-namespace.ts, reopenIfNamed in backends/stream/prune.ts)
// inside a PostgreSQL transaction that holds a share lock on the namespace's row. On PGlite, one
// session, that transaction holds every other statement of the process while the backend answers:
// a backend that takes the reopen and never answers (a Redis command has no timeout of its own)
// would stall the whole process. The reopen is bounded: past it, the write answers 503 and
// nothing is held any longer; once the backend answers, the write goes there. The backend is
// reached through a proxy that stops forwarding. (On PostgreSQL the other statement takes another
// session and is never held: there only the write's answer is shown.)
const HOLD_MS = 5_000;
const BOUND_MS = 300;
const backends = [
  { name: 'redis-streams', url: testRedisUrl() },
  { name: 'nats-jetstream', url: testNatsUrl() },
] as const;

for (const { name: kind, url } of backends) {
  describe.skipIf(!url)(`reopening ${kind} while it does not answer`, () => {
    let t: TestApp;
    let tenant: TestTenant;
    let proxy: TcpProxy;
    let redis: Redis | undefined;
    let nc: NatsConnection | undefined;
    const proxied = proxiedBackend(kind, url!, `wal-reopen-hung-${kind.slice(0, 4)}`);
    const opened = proxied.opened;
    beforeAll(() => {
      ({ t, tenant, proxy, redis, nc } = proxied);
    });

    it('a write reopening a backend that gives no answer holds the database no longer than the bound', {
      timeout: 60_000,
    }, async () => {
      const db = walDb(t);
      const prefix = `mt_reopen_hung_${process.pid}_${Date.now()}`;
      const real = redis
        ? createRedisStreamsBackend(redis, { prefix })
        : createNatsJetStreamBackend(nc!, { prefix });
      opened.push(real);
      const name = 'reopen-hung';
      await addNamespace(t, tenant.id, name, { backend: kind, fallback_backend: 'postgres' });
      const namespaces = createNamespaceCache(t.ctx, db);
      const ns = (await namespaces.get(tenant.id, name))!;
      // Retired there (as a prune leaves it), and named by the namespace again.
      expect(await real.retire(tenant.id, name)).toBe(true);

      // The backend stops answering as the reopen is sent (the append before was refused at once).
      let release: (() => void) | undefined;
      let reopening: () => void = () => {};
      const reopened = new Promise<void>((resolve) => {
        reopening = resolve;
      });
      const backend: StreamBackend = Object.assign(Object.create(real) as StreamBackend, {
        reopen: (...args: Parameters<StreamBackend['reopen']>) => {
          if (!release) {
            proxy.hold();
            const giveBack = setTimeout(() => proxy.release(), HOLD_MS);
            release = () => {
              clearTimeout(giveBack);
              proxy.release();
            };
          }
          reopening();
          return real.reopen(...args);
        },
      });
      const committer = createGroupCommitter(db);
      const append = createAppender(committer, new Map([[kind, backend]]), undefined, {
        db,
        namespaces,
        backendTimeoutMs: BOUND_MS,
      });
      const rows = (messageId: string) => toRows(tenant.id, ns, kind, [{ messageId, payload: {} }]);
      try {
        const writing = append(ns, rows('while-hung')).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        await reopened;
        // A statement of the process while the reopen waits, its transaction open.
        const sent = performance.now();
        await withSystem(db, (trx) => sql`select 1`.execute(trx));
        const waitedMs = performance.now() - sent;
        expect(waitedMs).toBeLessThan(BOUND_MS + 1_000);
        expect(await writing).toMatchObject({ error: { code: 'BACKEND_UNAVAILABLE' } });

        // Once it answers, the write reopens it and goes there.
        release?.();
        const [after] = await append(ns, rows('after'));
        expect(after?.message.backend).toBe(kind);
        expect((await real.find(tenant.id, name, 'after'))?.state).toBe('pending');
      } finally {
        release?.();
        await committer.close();
      }
    });
  });
}
