import type { NatsConnection } from '@nats-io/transport-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import { type TestApp, testNatsUrl } from '../../platform/testing/index.ts';
import { createNatsJetStreamBackend } from '../backends/nats-jetstream/index.ts';
import { createGroupCommitter } from '../backends/postgres/group-commit.ts';
import type { StreamBackend } from '../backends/stream/contract.ts';
import { startRelay } from '../backends/stream/relay.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { createAppender } from '../write/append.ts';
import { writeMessages } from '../write/index.ts';
import { toRows } from '../write/prepare.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { backendsInPostgres, holdRepliesAfterFirstPublish, proxiedBackend } from './proxied-backend.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// A JetStream publish whose ack is lost: the server stored the message, and the client's own
// request timeout (the backend's `timeoutMs`, not the caller's bound) fires. Stored or not, the
// writer cannot know; handing the rows to the namespace's fallback (postgres) would store them
// twice, and deliver them twice, once from each backend. So neither the outbox relay nor the
// HTTP write path hands them over: the relay keeps them for NATS, the write answers 503, and the
// same rows sent again to NATS are replays. NATS is reached through a proxy that forwards the
// publishes and holds back the server's answers from the first publish on.
const NATS_TIMEOUT_MS = 400;
const ROWS = 3;

describe.skipIf(!testNatsUrl())('a NATS publish whose ack is lost', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let proxy: TcpProxy;
  let nc: NatsConnection;
  let seq = 0;
  const proxied = proxiedBackend(
    'nats-jetstream',
    testNatsUrl() ?? 'nats://127.0.0.1:4222',
    'wal-nats-unacked',
  );
  const opened = proxied.opened;
  beforeAll(() => {
    ({ t, tenant, proxy } = proxied);
    nc = proxied.nc!;
  });

  const db = () => walDb(t);
  /**
   * A backend of its own prefix whose first publish (a request to a subject of its streams; the
   * KV and JetStream API requests pass) makes the proxy hold back every answer of the server.
   */
  const unackedBackend = () => {
    const prefix = `mt_unacked_${process.pid}_${Date.now()}_${++seq}`;
    const gated = holdRepliesAfterFirstPublish(nc, proxy, prefix);
    const backend = createNatsJetStreamBackend(gated, { prefix, timeoutMs: NATS_TIMEOUT_MS });
    opened.push(backend);
    return backend;
  };
  const namespace = async () => {
    const name = `unacked-${seq}`;
    await addNamespace(t, tenant.id, name, { backend: 'nats-jetstream', fallback_backend: 'postgres' });
    const namespaces = createNamespaceCache(t.ctx, db());
    return { name, namespaces, ns: (await namespaces.get(tenant.id, name))! };
  };
  /** What PostgreSQL holds of the namespace (outbox rows and postgres-backend messages), by backend. */
  const inPostgres = (name: string) => backendsInPostgres(db(), tenant.id, name);
  /** Each message stored once in NATS (its work-queue stream), pending. */
  const storedOnceInNats = async (backend: StreamBackend, name: string, ids: string[]) => {
    const found = await Promise.all(ids.map((id) => backend.find(tenant.id, name, id)));
    expect(found.map((f) => f?.state)).toEqual(ids.map(() => 'pending'));
    expect((await backend.lag()).messages).toBe(ids.length);
  };
  const ids = Array.from({ length: ROWS }, (_, i) => `m-${i}`);

  it('the relay keeps the rows for NATS, never hands them to the fallback, and stores each once', {
    timeout: 60_000,
  }, async () => {
    const backend = unackedBackend();
    await backend.ping();
    const { name, ns } = await namespace();
    await withTenant(db(), tenant.id, (trx) =>
      writeMessages(
        trx,
        tenant.id,
        ns,
        ids.map((messageId, i) => ({ messageId, payload: { i } })),
      ),
    );
    // The relay's own bound far above the NATS client's timeout: that one decides.
    const relay = startRelay({
      ctx: t.ctx,
      db: db(),
      streams: new Map([['nats-jetstream', backend]]),
      retryMs: 3_600_000,
      backendTimeoutMs: 20_000,
    });
    try {
      await relay.drain();
      expect(await inPostgres(name)).toEqual(ids.map(() => 'nats-jetstream'));
      proxy.release();
      // NATS stored them although no ack came back.
      await storedOnceInNats(backend, name, ids);
      // The next pass appends them again: replays, then deleted from the outbox.
      await relay.drain();
      expect(await inPostgres(name)).toEqual([]);
      await storedOnceInNats(backend, name, ids);
    } finally {
      proxy.release();
      await relay.stop();
    }
  });

  it('an HTTP write answers 503 instead of writing to the fallback, and its retry is a replay', {
    timeout: 60_000,
  }, async () => {
    const backend = unackedBackend();
    await backend.ping();
    const { name, ns, namespaces } = await namespace();
    const committer = createGroupCommitter(db());
    const append = createAppender(committer, new Map([['nats-jetstream', backend]]), undefined, {
      db: db(),
      namespaces,
    });
    const rows = () =>
      toRows(
        tenant.id,
        ns,
        'nats-jetstream',
        ids.map((messageId, i) => ({ messageId, payload: { i } })),
      );
    try {
      await expect(append(ns, rows())).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      proxy.release();
      expect(await inPostgres(name)).toEqual([]);
      await storedOnceInNats(backend, name, ids);
      // The writer's retry (same messageIds): NATS answers what it stored.
      const again = await append(ns, rows());
      expect(again.map((o) => [o.replayed, o.message.backend])).toEqual(
        ids.map(() => [true, 'nats-jetstream']),
      );
      expect(await inPostgres(name)).toEqual([]);
      await storedOnceInNats(backend, name, ids);
    } finally {
      proxy.release();
      await committer.close();
    }
  });
});
