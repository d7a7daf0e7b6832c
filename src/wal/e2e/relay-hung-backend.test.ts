import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { createNatsJetStreamBackend } from '../backends/nats-jetstream/index.ts';
import { createRedisStreamsBackend } from '../backends/redis-streams/index.ts';
import type { StreamBackend } from '../backends/stream/contract.ts';
import { type Relay, startRelay } from '../backends/stream/relay.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { writeMessages } from '../write/index.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { proxiedBackend } from './proxied-backend.ts';
import { until } from './receiver.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// The outbox relay appends rows to their stream backend inside a PostgreSQL transaction, then
// deletes them in it. On PGlite, one session, an open transaction holds every other statement of
// the process: a backend that takes the append and never answers (a server stopped or overloaded,
// a network dropping packets: the connection stays up, so the client does not fail fast) would
// stall the whole process; a Redis command has no timeout of its own. The append is bounded, and
// the relay asks the backend (ping) before it opens its transaction. A timed-out append may land
// later, so the rows are never sent to the namespace's fallback (postgres here): they would be
// stored twice. They wait, and are appended again (a replay where it landed) once it answers.
// The backend is reached through a proxy that stops forwarding. (On PostgreSQL the other
// statement takes another session and is never held: there only the delivery is shown.)
const HOLD_MS = 5_000;
const BOUND_MS = 300;
const ROWS = 5;
const backends = [
  { name: 'redis-streams', url: testRedisUrl() },
  { name: 'nats-jetstream', url: testNatsUrl() },
] as const;

for (const { name: kind, url } of backends) {
  describe.skipIf(!url)(`relaying to ${kind} while it does not answer`, () => {
    let t: TestApp;
    let tenant: TestTenant;
    let proxy: TcpProxy;
    let redis: Redis | undefined;
    let nc: NatsConnection | undefined;
    let seq = 0;
    const proxied = proxiedBackend(kind, url!, `wal-relay-hung-${kind.slice(0, 4)}`);
    const opened = proxied.opened;
    beforeAll(() => {
      ({ t, tenant, proxy, redis, nc } = proxied);
    });

    const db = () => walDb(t);
    /** A backend of its own (its own prefix: `lag()` counts only what this test stored). */
    const newBackend = () => {
      const prefix = `mt_relay_hung_${process.pid}_${Date.now()}_${++seq}`;
      const backend = redis
        ? createRedisStreamsBackend(redis, { prefix })
        : createNatsJetStreamBackend(nc!, { prefix });
      opened.push(backend);
      return backend;
    };
    /** A namespace on the backend that falls back to postgres, with ROWS rows waiting in the outbox. */
    const withWaitingRows = async () => {
      const name = `relay-hung-${seq}`;
      await addNamespace(t, tenant.id, name, { backend: kind, fallback_backend: 'postgres' });
      const ns = (await createNamespaceCache(t.ctx, db()).get(tenant.id, name))!;
      const ids = Array.from({ length: ROWS }, (_, i) => `m-${i}`);
      await withTenant(db(), tenant.id, (trx) =>
        writeMessages(
          trx,
          tenant.id,
          ns,
          ids.map((messageId, i) => ({ messageId, payload: { i } })),
        ),
      );
      return { name, ids };
    };
    /** The rows of the namespace PostgreSQL holds: the outbox's, and the postgres backend's. */
    const inPostgres = (name: string) =>
      withSystem(db(), (trx) =>
        trx
          .selectFrom('wal.messages')
          .select(['message_id', 'backend'])
          .where('tenant_id', '=', tenant.id)
          .where('namespace', '=', name)
          .execute(),
      );
    /** How long a statement made `afterMs` into `work` waited for its answer. */
    const statementDuring = async <T>(work: () => Promise<T>, afterMs: number) => {
      const running = work().then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      await new Promise((resolve) => setTimeout(resolve, afterMs));
      const sent = performance.now();
      await withSystem(db(), (trx) => sql`select 1`.execute(trx));
      return { waitedMs: performance.now() - sent, outcome: await running };
    };
    /** Holds the proxy, and releases it after HOLD_MS at the latest. */
    const hold = () => {
      proxy.hold();
      const giveBack = setTimeout(() => proxy.release(), HOLD_MS);
      return () => {
        clearTimeout(giveBack);
        proxy.release();
      };
    };
    /** Once the backend answers again: every row is stored there once, none left in PostgreSQL. */
    const deliveredOnce = async (relay: Relay, backend: StreamBackend, name: string, ids: string[]) => {
      await until(
        async () => {
          await relay.drain();
          return (await inPostgres(name)).length === 0;
        },
        'the rows relayed once the backend answers',
        20_000,
      );
      const found = await Promise.all(ids.map((id) => backend.find(tenant.id, name, id)));
      expect(found.map((f) => f?.state)).toEqual(ids.map(() => 'pending'));
      expect((await backend.lag()).messages).toBe(ROWS);
    };
    const relayTo = (backend: StreamBackend) =>
      startRelay({
        ctx: t.ctx,
        db: db(),
        streams: new Map([[kind, backend]]),
        retryMs: 3_600_000,
        backendTimeoutMs: BOUND_MS,
      });

    it('an append with no answer holds the database no longer than its bound, and is not sent to the fallback', {
      timeout: 60_000,
    }, async () => {
      const real = newBackend();
      await real.ping();
      const { name, ids } = await withWaitingRows();
      // The backend stops answering as the append is sent: it answered the ping before.
      let release: (() => void) | undefined;
      const backend: StreamBackend = Object.assign(Object.create(real) as StreamBackend, {
        append: (...args: Parameters<StreamBackend['append']>) => {
          release ??= hold();
          return real.append(...args);
        },
      });
      const relay = relayTo(backend);
      try {
        const { waitedMs } = await statementDuring(() => relay.drain(), 50);
        expect(release).toBeDefined();
        expect(waitedMs).toBeLessThan(BOUND_MS + 1_000);
        // The rows wait for the backend (the append may still land there), never for postgres.
        expect((await inPostgres(name)).map((r) => r.backend)).toEqual(ids.map(() => kind));
        release?.();
        await deliveredOnce(relay, backend, name, ids);
      } finally {
        release?.();
        await relay.stop();
      }
    });

    it('the relay opens no transaction for a backend that does not answer its ping', {
      timeout: 60_000,
    }, async () => {
      const backend = newBackend();
      await backend.ping();
      const { name, ids } = await withWaitingRows();
      const release = hold();
      const relay = relayTo(backend);
      try {
        const { waitedMs, outcome } = await statementDuring(() => relay.drain(), BOUND_MS / 2);
        // Not even the bound: the ping is made before the transaction.
        expect(waitedMs).toBeLessThan(BOUND_MS);
        expect(outcome).toEqual({ value: 0 });
        expect((await inPostgres(name)).map((r) => r.backend)).toEqual(ids.map(() => kind));
        release();
        await deliveredOnce(relay, backend, name, ids);
      } finally {
        release();
        await relay.stop();
      }
    });
  });
}
