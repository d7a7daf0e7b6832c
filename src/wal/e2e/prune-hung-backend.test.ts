import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { createNatsJetStreamBackend } from '../backends/nats-jetstream/index.ts';
import { createRedisStreamsBackend } from '../backends/redis-streams/index.ts';
import { BackendUnavailableError, type StreamBackend } from '../backends/stream/contract.ts';
import { pruneDrainingBackend, startDrainPruner } from '../backends/stream/prune.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { proxiedBackend } from './proxied-backend.ts';
import { until } from './receiver.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// The prune holds the namespace's row (FOR NO KEY UPDATE) in a transaction across its call to the
// backend (retire). On PGlite, one session, an open transaction holds every other statement of the
// process: a backend that takes the call and never answers (a server stopped or overloaded, a
// network dropping packets: the connection stays up, so the client does not fail fast) would
// stall the whole process; Redis commands have no timeout of their own, NATS requests one per
// request. The retire is bounded (prune.ts), and the pruner asks the backend (ping) before it
// opens the transaction. Here the backend is reached through a proxy that stops forwarding.
// (On PostgreSQL the other statement takes another session and is never held: it passes there
// without showing anything.)
const HOLD_MS = 5_000;
const BOUND_MS = 300;
const backends = [
  { name: 'redis-streams', url: testRedisUrl() },
  { name: 'nats-jetstream', url: testNatsUrl() },
] as const;

for (const { name: kind, url } of backends) {
  describe.skipIf(!url)(`pruning ${kind} while it does not answer`, () => {
    let t: TestApp;
    let tenant: TestTenant;
    let proxy: TcpProxy;
    let backend: StreamBackend;
    let redis: Redis | undefined;
    let nc: NatsConnection | undefined;
    let seq = 0;

    const proxied = proxiedBackend(kind, url!, `wal-hung-${kind.slice(0, 4)}`);
    beforeAll(() => {
      ({ t, tenant, proxy, redis, nc } = proxied);
      const prefix = `mt_hung_${process.pid}_${Date.now()}`;
      backend = redis
        ? createRedisStreamsBackend(redis, { prefix })
        : createNatsJetStreamBackend(nc!, { prefix });
      proxied.opened.push(backend);
    });

    const db = () => walDb(t);
    /** A namespace that moved off the backend, which it lists as draining. */
    const movedOff = async () => {
      const name = `hung-${++seq}`;
      await addNamespace(t, tenant.id, name, { backend: kind });
      await withSystem(db(), (trx) =>
        trx
          .updateTable('wal.namespaces')
          .set({ backend: 'postgres' })
          .where('tenant_id', '=', tenant.id)
          .where('name', '=', name)
          .execute(),
      );
      return name;
    };
    const draining = async (name: string) => {
      const found = await withSystem(db(), (trx) =>
        trx
          .selectFrom('wal.namespaces')
          .select('draining_backends')
          .where('tenant_id', '=', tenant.id)
          .where('name', '=', name)
          .executeTakeFirstOrThrow(),
      );
      return found.draining_backends;
    };
    /** How long a statement made `afterMs` into `work` waited for its answer. */
    const statementDuring = async <T>(work: () => Promise<T>, afterMs = 50) => {
      const running = work().then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      await new Promise((resolve) => setTimeout(resolve, afterMs));
      const sent = performance.now();
      await withSystem(db(), (trx) => sql`select 1`.execute(trx));
      return { waitedMs: performance.now() - sent, outcome: await running };
    };
    /** Runs `fn` with the backend not answering; it answers again after HOLD_MS at the latest. */
    const whileHung = async <T>(fn: () => Promise<T>): Promise<T> => {
      await backend.ping();
      proxy.hold();
      const giveBack = setTimeout(() => proxy.release(), HOLD_MS);
      try {
        return await fn();
      } finally {
        clearTimeout(giveBack);
        proxy.release();
      }
    };

    it('holds the database no longer than its bound, and prunes once the backend answers', {
      timeout: 60_000,
    }, async () => {
      const name = await movedOff();
      const { waitedMs, outcome } = await whileHung(() =>
        statementDuring(() =>
          pruneDrainingBackend(db(), backend, tenant.id, name, { backendTimeoutMs: BOUND_MS }),
        ),
      );
      expect(outcome).toMatchObject({ error: expect.any(BackendUnavailableError) });
      expect(waitedMs).toBeLessThan(BOUND_MS + 1_000);
      expect(await draining(name)).toEqual([kind]);
      // Answering again (a retire given up on may land late: it is idempotent), it is pruned.
      await until(
        () => pruneDrainingBackend(db(), backend, tenant.id, name),
        'pruned once the backend answers',
        20_000,
      );
      expect(await draining(name)).toEqual([]);
    });

    it('the pruner opens no transaction for a backend that does not answer its ping', {
      timeout: 60_000,
    }, async () => {
      const name = await movedOff();
      const pruner = startDrainPruner({
        ctx: t.ctx,
        db: db(),
        streams: new Map([[kind, backend]]),
        intervalMs: 3_600_000,
        backendTimeoutMs: BOUND_MS,
      });
      try {
        const { waitedMs, outcome } = await whileHung(() =>
          statementDuring(() => pruner.runOnce(), BOUND_MS / 2),
        );
        // Not even the bound: the ping is made before the transaction.
        expect(waitedMs).toBeLessThan(BOUND_MS);
        expect(outcome).toEqual({ value: 0 });
        expect(await draining(name)).toEqual([kind]);
        await until(async () => (await pruner.runOnce()) > 0, 'pruned once the backend answers', 20_000);
        expect(await draining(name)).toEqual([]);
      } finally {
        await pruner.stop();
      }
    });
  });
}
