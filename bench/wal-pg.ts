/**
 * Part `pg` of `npm run bench:wal`: the WAL's PostgreSQL backend beside pg-boss on the same
 * PostgreSQL, both in this process: single writes, batches, delivery to a no-op handler (without
 * and with the inbox), end-to-end latency, lateness of delayed messages.
 */
import { readFile } from 'node:fs/promises';
import { PgBoss } from 'pg-boss';
import { withTenant } from '../src/platform/db/index.ts';
import { createGroupCommitter } from '../src/wal/backends/postgres/group-commit.ts';
import { createWal } from '../src/wal/module.ts';
import type { Namespace } from '../src/wal/namespaces/index.ts';
import type { Delivery } from '../src/wal/targets/target-result.ts';
import { type MessageInput, toRows, validateMessages } from '../src/wal/write/prepare.ts';
import {
  adminUrl,
  BATCH_SIZE,
  BATCHES,
  BOSS_DB,
  CONCURRENCY,
  closedLoop,
  DELAYED,
  DELIVER,
  facts,
  LATENCY,
  LATENCY_RATE,
  MERCATO_DB,
  notes,
  PAYLOAD,
  paced,
  recordPercentiles,
  results,
  SINGLE_TOTAL,
  sqlAt,
  urlOf,
  WARMUP,
  WORKER_CONCURRENCY,
  waitForCount,
} from './wal-common.ts';
import { internalTarget, openMercato } from './wal-mercato.ts';

export async function runPg(tenantId: string): Promise<void> {
  await sqlAt(adminUrl, `drop database if exists ${BOSS_DB} with (force)`);
  await sqlAt(adminUrl, `create database ${BOSS_DB}`);
  facts['bossVersion'] = (
    JSON.parse(await readFile(new URL('../node_modules/pg-boss/package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;
  const m = await openMercato(tenantId);
  facts['dbPoolSize'] = String(m.ctx.config.dbPoolSize);
  const { db } = m;
  const namespaces: Record<string, Namespace> = {};
  const concurrency = { consumerConcurrency: WORKER_CONCURRENCY };
  for (const [name, handler] of [
    ['bench-single', undefined],
    ['bench-batch', undefined],
    ['bench-deliver-noop', 'noop-fast'],
    ['bench-deliver-inbox', 'noop'],
    ['bench-latency', 'noop-fast'],
    ['bench-delayed', 'noop-fast'],
  ] as const) {
    namespaces[name] = await m.namespace(name, {
      targets: handler ? [internalTarget(handler)] : [],
      ...concurrency,
    });
  }
  const wal = await createWal(m.ctx);
  let latencies: number[] = [];
  const noop = async (_trx: unknown, delivery: Delivery) => {
    if (delivery.namespace === 'bench-latency') latencies.push(Date.now() - delivery.createdAt.getTime());
  };
  wal.registerHandler('noop', async () => {});
  wal.registerHandler('noop-fast', noop, { inbox: false });
  const message = (): MessageInput => ({ payload: PAYLOAD });
  const outbox = (ns: string, messages: MessageInput[]) =>
    withTenant(db, tenantId, (trx) => wal.write(trx, tenantId, namespaces[ns]!, messages));

  // pg-boss on its own database of the same server, same pool size as Mercato's.
  const boss = new PgBoss({ connectionString: urlOf(BOSS_DB), max: m.ctx.config.dbPoolSize });
  boss.on('error', (err) => console.error('pg-boss error', err));
  await boss.start();
  for (const q of ['single', 'batch', 'deliver', 'latency', 'delayed']) await boss.createQueue(q);
  const bossWork = { batchSize: 64, localConcurrency: WORKER_CONCURRENCY, pollingIntervalSeconds: 0.5 };

  try {
    // 1. Durable single writes, N concurrent callers.
    const warm = WARMUP;
    await closedLoop(warm, CONCURRENCY, () => outbox('bench-single', [message()]));
    results['mercatoSingleNoGroup'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, () =>
      outbox('bench-single', [message()]),
    );
    const committer = createGroupCommitter(db);
    const groupWrite = () => {
      const ns = namespaces['bench-single']!;
      const messages = [message()];
      validateMessages(ns, messages, (i) => `/messages/${i}`);
      return committer.submit(toRows(tenantId, ns, 'postgres', messages));
    };
    await closedLoop(warm, CONCURRENCY, groupWrite);
    const before = committer.stats();
    results['mercatoSingleGroup'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, groupWrite);
    const after = committer.stats();
    results['groupRowsPerFlush'] = (after.rows - before.rows) / Math.max(1, after.flushes - before.flushes);
    await committer.close();
    await closedLoop(warm, CONCURRENCY, () => boss.send('single', PAYLOAD));
    results['bossSend'] = await closedLoop(SINGLE_TOTAL, CONCURRENCY, () => boss.send('single', PAYLOAD));
    console.log('single', results);

    // 2. Batches of BATCH_SIZE, one caller, one transaction each.
    const batch = () => Array.from({ length: BATCH_SIZE }, message);
    const bossBatch = Array.from({ length: BATCH_SIZE }, () => ({ data: PAYLOAD }));
    await outbox('bench-batch', batch());
    results['mercatoBatch'] =
      (await closedLoop(BATCHES, 1, () => outbox('bench-batch', batch()))) * BATCH_SIZE;
    await boss.insert('batch', bossBatch);
    results['bossBatch'] = (await closedLoop(BATCHES, 1, () => boss.insert('batch', bossBatch))) * BATCH_SIZE;
    console.log('batch', results);

    // 3. Delivery throughput: write DELIVER first, then start the consumer and time the drain.
    // The engine serves every namespace: drop the undelivered writes of steps 1 and 2 first.
    await sqlAt(urlOf(MERCATO_DB), 'truncate wal.messages cascade');
    const delivered = async (ns: string) =>
      Number(
        (
          await sqlAt(
            urlOf(MERCATO_DB),
            `select count(*) as n from wal.messages where namespace = $1 and state = 'delivered'`,
            [ns],
          )
        )[0]?.['n'],
      );
    for (const [ns, key] of [
      ['bench-deliver-noop', 'mercatoDeliver'],
      ['bench-deliver-inbox', 'mercatoDeliverInbox'],
    ] as const) {
      for (let done = 0; done < DELIVER; done += BATCH_SIZE) {
        await outbox(ns, Array.from({ length: Math.min(BATCH_SIZE, DELIVER - done) }, message));
      }
      const started = performance.now();
      await wal.start?.();
      const ok = await waitForCount(`Mercato ${ns}`, () => delivered(ns), DELIVER);
      results[key] = DELIVER / ((performance.now() - started) / 1000);
      await wal.stop?.();
      if (!ok) notes.push(`Mercato (${ns}) delivered only ${await delivered(ns)} of ${DELIVER} (stalled).`);
    }

    for (let done = 0; done < DELIVER; done += BATCH_SIZE) {
      await boss.insert('deliver', bossBatch.slice(0, Math.min(BATCH_SIZE, DELIVER - done)));
    }
    const started = performance.now();
    // Mercato's engine leases 64 per wake and runs up to consumerConcurrency deliveries at once.
    await boss.work('deliver', bossWork, async () => {});
    const bossOk = await waitForCount('pg-boss deliver', bossCompleted, DELIVER);
    results['bossDeliver'] = DELIVER / ((performance.now() - started) / 1000);
    if (!bossOk) notes.push(`pg-boss completed only ${await bossCompleted()} of ${DELIVER} (stalled).`);
    await boss.offWork('deliver');
    console.log('deliver', results);

    // 4. End-to-end latency, from the write to the handler, at LATENCY_RATE single writes/s.
    await wal.start?.();
    latencies = [];
    await paced(LATENCY, LATENCY_RATE, () => outbox('bench-latency', [message()]));
    if (!(await waitForCount('Mercato latency', () => latencies.length, LATENCY)))
      notes.push(`Mercato PostgreSQL latency: ${latencies.length} of ${LATENCY} delivered.`);
    recordPercentiles('mercatoLatency', latencies);
    const bossLatencies: number[] = [];
    await boss.work('latency', { ...bossWork, includeMetadata: true }, async (jobs) => {
      for (const job of jobs) bossLatencies.push(Date.now() - job.createdOn.getTime());
    });
    await paced(LATENCY, LATENCY_RATE, () => boss.send('latency', PAYLOAD));
    if (!(await waitForCount('pg-boss latency', () => bossLatencies.length, LATENCY)))
      notes.push(`pg-boss latency: ${bossLatencies.length} of ${LATENCY} jobs ran.`);
    recordPercentiles('bossLatency', bossLatencies);
    await boss.offWork('latency');
    console.log('latency', results);

    // 5. Lateness of delayed messages (delay 1,000–3,000 ms), consumers running.
    const latenessOf = async (url: string, table: string, done: string, late: string, where: string) =>
      (
        await sqlAt(
          url,
          `select count(*) filter (where state = '${done}') as n,
                  percentile_cont(array[0.5, 0.99]) within group (order by extract(epoch from ${late}) * 1000) as p
             from ${table} where ${where}`,
        )
      )[0] as { n: string; p: number[] | null };
    const delays = Array.from({ length: DELAYED }, (_, i) => 1000 + ((i * 7919) % 2001));
    for (let done = 0; done < DELAYED; done += BATCH_SIZE) {
      await outbox(
        'bench-delayed',
        delays.slice(done, done + BATCH_SIZE).map((delay) => ({ payload: PAYLOAD, lifecycle: { delay } })),
      );
    }
    const lateness = () =>
      latenessOf(
        urlOf(MERCATO_DB),
        'wal.messages',
        'delivered',
        'delivered_at - due_at',
        "namespace = 'bench-delayed'",
      );
    await waitForCount('Mercato delayed', async () => Number((await lateness()).n), DELAYED);
    const mercatoLate = await lateness();
    results['mercatoLateP50'] = mercatoLate.p?.[0] ?? Number.NaN;
    results['mercatoLateP99'] = mercatoLate.p?.[1] ?? Number.NaN;
    if (Number(mercatoLate.n) < DELAYED)
      notes.push(`Mercato delivered ${mercatoLate.n} of ${DELAYED} delayed messages.`);

    await boss.work('delayed', bossWork, async () => {});
    const now = Date.now();
    for (let done = 0; done < DELAYED; done += BATCH_SIZE) {
      await boss.insert(
        'delayed',
        delays
          .slice(done, done + BATCH_SIZE)
          .map((delay) => ({ data: PAYLOAD, startAfter: new Date(now + delay) })),
      );
    }
    const bossLateness = () =>
      latenessOf(urlOf(BOSS_DB), 'pgboss.job', 'completed', 'completed_on - start_after', "name = 'delayed'");
    await waitForCount('pg-boss delayed', async () => Number((await bossLateness()).n), DELAYED);
    const bossLate = await bossLateness();
    results['bossLateP50'] = bossLate.p?.[0] ?? Number.NaN;
    results['bossLateP99'] = bossLate.p?.[1] ?? Number.NaN;
    if (Number(bossLate.n) < DELAYED)
      notes.push(`pg-boss completed ${bossLate.n} of ${DELAYED} delayed jobs.`);
    console.log('lateness', results);
  } finally {
    await boss.stop({ graceful: false }).catch(() => {});
    await wal.stop?.().catch(() => {});
    await m.close();
    await sqlAt(adminUrl, `drop database if exists ${BOSS_DB} with (force)`).catch(() => {});
  }

  async function bossCompleted() {
    const rows = await sqlAt(
      urlOf(BOSS_DB),
      `select count(*) as n from pgboss.job where name = 'deliver' and state = 'completed'`,
    );
    return Number(rows[0]?.['n']);
  }
}
