import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp, testDatabaseKind, testNatsUrl } from '../../platform/testing/index.ts';
import { createNatsJetStreamBackend } from '../backends/nats-jetstream/index.ts';
import { namespaceNames } from '../backends/nats-jetstream/names.ts';
import { createGroupCommitter } from '../backends/postgres/group-commit.ts';
import type { StreamBackend, StreamConsumer } from '../backends/stream/contract.ts';
import { pruneDrainingBackend } from '../backends/stream/prune.ts';
import { startRelay } from '../backends/stream/relay.ts';
import { createWal, type WalModule } from '../index.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { createAppender } from '../write/append.ts';
import { writeMessages } from '../write/index.ts';
import { toRows } from '../write/prepare.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { gatePublishes } from './nats-publish-gate.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

// A batch appended to NATS publishes its messages one after another (pipelined): a retire of the
// namespace (backends/stream/prune.ts) can land between two of them, so that the first ones are
// stored (and delivered there by the consumers still draining the backend) and the rest refused.
// Only the refused ones may be written again where the namespace is now: the others would be
// delivered twice. The gate (nats-publish-gate.ts) holds the batch's later publishes while the
// test lets the first ones be delivered and prunes the backend, every step real.
describe.skipIf(!testNatsUrl())('a batch on NATS that a retire cuts in two', () => {
  let t: TestApp;
  let wal: WalModule;
  let tenant: TestTenant;
  let admin: Record<string, string>;
  let receiver: Receiver;
  let nc: NatsConnection;

  beforeAll(async () => {
    t = await startTestApp(
      { NATS_URL: testNatsUrl()!, MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' },
      {
        modules: async (ctx) => {
          // No pass of the app's own pruner: the test prunes where it wants to.
          wal = await createWal(ctx, { drainPruneMs: 3_600_000 });
          return [wal];
        },
      },
    );
    tenant = await createTestTenant(t, 'wal-midbatch');
    admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
    receiver = await startReceiver();
    nc = await connect({ servers: testNatsUrl()! });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
    await nc?.close();
  });

  const deliveries = (messageId: string) => receiver.received.filter((r) => r.event.id === messageId).length;

  it('writes again only the refused messages: each delivered once, the answer naming where each is', {
    timeout: 60_000,
  }, async () => {
    const name = 'halfway';
    const hook = { name: 'hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 };
    const made = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name, backend: 'nats-jetstream', targets: [hook] },
      admin,
    );
    expect(made.statusCode, made.body).toBe(201);
    const { db, namespaces, streams } = wal.deps;
    // The namespace as a process that has not heard of the move reads it.
    const stale = (await namespaces.get(tenant.id, name))!;
    const moved = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/wal/namespaces/${name}`,
      headers: admin,
      payload: { backend: 'postgres' },
    });
    expect(moved.json()).toMatchObject({ backend: 'postgres', drainingBackends: ['nats-jetstream'] });

    const ids = ['m1', 'm2', 'm3', 'm4'];
    const rows = toRows(
      tenant.id,
      stale,
      'nats-jetstream',
      ids.map((messageId) => ({ payload: { messageId }, messageId })),
    );
    const { hash } = namespaceNames('mercato_wal', tenant.id, name);
    // The first two stored, delivered by the app's consumer (still serving the draining backend),
    // then the backend pruned: retired on NATS and off the namespace's list.
    const writer = createNatsJetStreamBackend(
      gatePublishes(nc, `mercato_wal.${hash}.`, 2, async () => {
        await until(() => deliveries('m1') + deliveries('m2') === 2, 'the two stored delivered on NATS');
        await until(
          () => pruneDrainingBackend(db, streams.get('nats-jetstream')!, tenant.id, name),
          'NATS pruned between two publishes of the batch',
        );
      }),
      { timeoutMs: 5_000 },
    );
    const committer = createGroupCommitter(db);
    try {
      const append = createAppender(committer, new Map([['nats-jetstream', writer]]), undefined, {
        db,
        namespaces,
      });
      const outcomes = await append(stale, rows);
      // One answer per message, in order, with the id each was written with, and where it is.
      expect(outcomes.map((o) => [o.message.messageId, o.message.id, o.message.backend])).toEqual([
        ['m1', rows[0]!.id, 'nats-jetstream'],
        ['m2', rows[1]!.id, 'nats-jetstream'],
        ['m3', rows[2]!.id, 'postgres'],
        ['m4', rows[3]!.id, 'postgres'],
      ]);
      expect(outcomes.every((o) => !o.replayed)).toBe(true);
    } finally {
      await committer.close();
      await writer.close();
    }
    await until(() => ids.every((id) => deliveries(id) > 0), 'every message delivered');
    // A second delivery of m1 or m2 (written again on postgres) would have come by now.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(ids.map(deliveries)).toEqual([1, 1, 1, 1]);
    const onPostgres = await withTenant(db, tenant.id, (trx) =>
      trx
        .selectFrom('wal.messages')
        .select(['message_id', 'id'])
        .where('namespace', '=', name)
        .orderBy('message_id')
        .execute(),
    );
    expect(onPostgres).toEqual([
      { message_id: 'm3', id: rows[2]!.id },
      { message_id: 'm4', id: rows[3]!.id },
    ]);
  });
});

// The outbox relay does not meet that cut: the rows it sends are marked sent to NATS before it
// sends them (relay-marks.ts, migration 0063), and a prune does not retire a backend the outbox has
// rows marked for (NATS may hold them and deliver them, and forget them with the retire). So the
// namespace moved in the middle of the batch, the prune waits, the whole batch lands on NATS and
// is delivered there once, nothing is handed on, and the prune goes through once it is relayed.
// (Should a retire still refuse a relayed batch, rows NATS stored are deleted as relayed and only
// the refused ones go to the namespace's backend: relay.ts.) PostgreSQL only: the relay holds its
// transaction across the append, and on PGlite (one session) neither the move nor the prune can run
// until it ends.
describe.skipIf(!testNatsUrl() || testDatabaseKind() !== 'postgres')(
  'an outbox batch on NATS whose namespace moves off in the middle',
  () => {
    let t: TestApp;
    let tenant: TestTenant;
    let nc: NatsConnection;
    let plain: StreamBackend;
    let consumer: StreamConsumer | undefined;
    const prefix = `mt_midbatch_${process.pid}`;
    const delivered: string[] = [];

    beforeAll(async () => {
      t = await startTestApp();
      tenant = await createTestTenant(t, 'wal-midbatch-relay');
      nc = await connect({ servers: testNatsUrl()! });
      plain = createNatsJetStreamBackend(nc, { prefix });
    });
    afterAll(async () => {
      await consumer?.stop();
      await plain?.close();
      await nc?.close();
      await t?.close();
    });

    it('is not cut by a prune: the prune waits until NATS answered for every row, each delivered once', {
      timeout: 60_000,
    }, async () => {
      const name = 'relayed';
      const db = walDb(t);
      await addNamespace(t, tenant.id, name, { backend: 'nats-jetstream' });
      const namespace = (await createNamespaceCache(t.ctx, db).get(tenant.id, name))!;
      consumer = await plain.consume({
        logger: t.ctx.logger,
        namespaces: async () => [namespace],
        onNamespacesChanged: () => () => {},
        deliver: async (_ns, message) => {
          delivered.push(message.messageId);
          return { action: 'ack', targetsDone: [], attempts: [] };
        },
        leaseMs: 30_000,
      });
      const ids = ['r1', 'r2', 'r3'];
      await withTenant(db, tenant.id, (trx) =>
        writeMessages(
          trx,
          tenant.id,
          namespace,
          ids.map((messageId) => ({ payload: { messageId }, messageId })),
        ),
      );
      const { hash } = namespaceNames(prefix, tenant.id, name);
      const gated = createNatsJetStreamBackend(
        gatePublishes(nc, `${prefix}.${hash}.`, 2, async () => {
          await until(() => delivered.length === 2, 'the two stored delivered on NATS');
          // Moved to postgres (another session: the relay locks no namespace row): not pruned.
          await withSystem(db, (trx) =>
            trx
              .updateTable('wal.namespaces')
              .set({ backend: 'postgres' })
              .where('tenant_id', '=', tenant.id)
              .where('name', '=', name)
              .execute(),
          );
          expect(await pruneDrainingBackend(db, plain, tenant.id, name)).toBe(false);
        }),
        { prefix, timeoutMs: 5_000 },
      );
      const relay = startRelay({
        ctx: t.ctx,
        db,
        streams: new Map([['nats-jetstream', gated]]),
        retryMs: 60_000,
      });
      try {
        await relay.drain();
      } finally {
        await relay.stop();
        await gated.close();
      }
      const left = await withTenant(db, tenant.id, (trx) =>
        trx
          .selectFrom('wal.messages')
          .select(['message_id', 'backend'])
          .where('namespace', '=', name)
          .orderBy('message_id')
          .execute(),
      );
      expect(left).toEqual([]);
      await until(() => delivered.length === 3, 'the whole batch delivered on NATS');
      await until(() => pruneDrainingBackend(db, plain, tenant.id, name), 'NATS pruned once relayed');
      expect(delivered).toEqual(['r1', 'r2', 'r3']);
    });
  },
);
