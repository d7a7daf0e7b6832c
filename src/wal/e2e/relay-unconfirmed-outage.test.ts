import type { NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { type TestApp, testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { createNatsJetStreamBackend } from '../backends/nats-jetstream/index.ts';
import { createRedisStreamsBackend } from '../backends/redis-streams/index.ts';
import type { StreamBackend } from '../backends/stream/contract.ts';
import { pruneDrainingBackend } from '../backends/stream/prune.ts';
import { startRelay } from '../backends/stream/relay.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { writeMessages } from '../write/index.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { backendsInPostgres, holdRepliesAfterFirstPublish, proxiedBackend } from './proxied-backend.ts';
import { until } from './receiver.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// A relay pass appends outbox rows, the backend stores them and its answer is lost (no answer:
// BackendTimeoutError, the rows wait). A later pass finds the backend truly down (connection
// refused: BackendUnavailableError), the namespace falling back to postgres. Those rows must not
// go to the fallback: the backend holds them, and once it is back both would deliver them. What
// was sent and never confirmed is recorded on the rows (wal.messages.sent_to, migration 0063),
// in PostgreSQL, so the later pass may be another process's, or the same one restarted. The
// server is reached through a proxy that forwards the append but holds back its answer, then
// refuses connections, then forwards again.
const ROWS = 3;
const BOUND_MS = 1_000;
const backends = [
  { kind: 'redis-streams', url: testRedisUrl() },
  { kind: 'nats-jetstream', url: testNatsUrl() },
] as const;

for (const { kind, url } of backends) {
  describe.skipIf(!url)(`rows the relay sent to ${kind} and never had confirmed`, () => {
    let t: TestApp;
    let tenant: TestTenant;
    let proxy: TcpProxy;
    let redis: Redis | undefined;
    let nc: NatsConnection | undefined;
    let seq = 0;
    const proxied = proxiedBackend(kind, url!, `wal-unconfirmed-${kind.slice(0, 4)}`, {
      reconnectTimeWait: 100,
    });
    const opened = proxied.opened;
    beforeAll(() => {
      ({ t, tenant, proxy, redis, nc } = proxied);
    });

    const db = () => walDb(t);
    /**
     * A backend of its own prefix whose first append makes the proxy hold back every answer of the
     * server (on NATS: its first publish to a subject of its streams; the JetStream API requests
     * that make the stream pass).
     */
    const armedBackend = (): StreamBackend => {
      const prefix = `mt_unconfirmed_${process.pid}_${Date.now()}_${++seq}`;
      let armed = true;
      let backend: StreamBackend;
      if (redis) {
        const real = createRedisStreamsBackend(redis, { prefix });
        opened.push(real);
        backend = Object.assign(Object.create(real) as StreamBackend, {
          append: (...args: Parameters<StreamBackend['append']>) => {
            if (armed) proxy.holdReplies();
            armed = false;
            return real.append(...args);
          },
        });
      } else {
        backend = createNatsJetStreamBackend(holdRepliesAfterFirstPublish(nc!, proxy, prefix), {
          prefix,
          timeoutMs: 400,
        });
        opened.push(backend);
      }
      return backend;
    };
    /** The rows of the namespace PostgreSQL holds (the outbox's and the postgres backend's), by backend. */
    const inPostgres = (name: string) => backendsInPostgres(db(), tenant.id, name);
    const relayTo = (backend: StreamBackend) =>
      startRelay({
        ctx: t.ctx,
        db: db(),
        streams: new Map([[kind, backend]]),
        retryMs: 3_600_000,
        backendTimeoutMs: BOUND_MS,
      });
    /** Waits until the backend's client answers pings (true) or has seen the server go (false). */
    const reachable = (backend: StreamBackend, up: boolean) =>
      until(
        () =>
          backend.ping().then(
            () => up,
            () => !up,
          ),
        up ? `${kind} reachable again` : `${kind} seen down`,
        20_000,
      );

    const ids = Array.from({ length: ROWS }, (_, i) => `m-${i}`);
    /** A namespace on the backend falling back to postgres, its rows in the outbox, sent once (pass 1) with no answer. */
    const sentUnanswered = async (backend: StreamBackend) => {
      await backend.ping();
      const name = `unconfirmed-${seq}`;
      await addNamespace(t, tenant.id, name, { backend: kind, fallback_backend: 'postgres' });
      const ns = (await createNamespaceCache(t.ctx, db()).get(tenant.id, name))!;
      await withTenant(db(), tenant.id, (trx) =>
        writeMessages(
          trx,
          tenant.id,
          ns,
          ids.map((messageId, i) => ({ messageId, payload: { i } })),
        ),
      );
      // The append reaches the server, its answer does not come back.
      const first = relayTo(backend);
      await first.drain();
      await first.stop();
      expect(await inPostgres(name)).toEqual(ids.map(() => kind));
      return name;
    };
    /** Each message stored once on the backend, none left in PostgreSQL. */
    const storedOnce = async (backend: StreamBackend, name: string) => {
      expect(await inPostgres(name)).toEqual([]);
      const found = await Promise.all(ids.map((id) => backend.find(tenant.id, name, id)));
      expect(found.map((f) => f?.state)).toEqual(ids.map(() => 'pending'));
      expect((await backend.lag()).messages).toBe(ROWS);
    };

    it('are never handed to the fallback by a later pass, and are stored once when it is back', {
      timeout: 90_000,
    }, async () => {
      const backend = armedBackend();
      try {
        const name = await sentUnanswered(backend);
        // The server goes: connections cut, new ones refused.
        await proxy.cut();
        proxy.release();
        await reachable(backend, false);
        // Pass 2, by another relay (a process restarted): the backend refuses, the rows wait.
        const second = relayTo(backend);
        await second.drain();
        await second.stop();
        expect(await inPostgres(name)).toEqual(ids.map(() => kind));
        // Back: the rows are appended again, replays of what the first pass stored.
        await proxy.restore();
        await reachable(backend, true);
        const third = relayTo(backend);
        try {
          await until(
            async () => {
              await third.drain();
              return (await inPostgres(name)).length === 0;
            },
            'the rows relayed once the backend is back',
            20_000,
          );
        } finally {
          await third.stop();
        }
        await storedOnce(backend, name);
      } finally {
        proxy.release();
        await proxy.restore().catch(() => undefined);
      }
    });

    it('are asked of it again, never handed to the namespace backend, when the namespace moved off it', {
      timeout: 90_000,
    }, async () => {
      const backend = armedBackend();
      try {
        const name = await sentUnanswered(backend);
        proxy.release();
        await withSystem(db(), (trx) =>
          trx
            .updateTable('wal.namespaces')
            .set({ backend: 'postgres', fallback_backend: null })
            .where('tenant_id', '=', tenant.id)
            .where('name', '=', name)
            .execute(),
        );
        // Not pruned while the outbox has rows it may hold.
        expect(await pruneDrainingBackend(db(), backend, tenant.id, name)).toBe(false);
        const second = relayTo(backend);
        await second.drain();
        await second.stop();
        await storedOnce(backend, name);
      } finally {
        proxy.release();
      }
    });
  });
}
