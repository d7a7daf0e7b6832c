/**
 * The `wal` section of bench/README.md from what the parts of `npm run bench:wal` measured; a
 * figure a part did not produce (not selected, or failed) shows as "–", and the notes say why.
 */
import { describeMachine } from './machine.ts';
import {
  BATCH_SIZE,
  BATCHES,
  CONCURRENCY,
  DELAYED,
  DELIVER,
  DURATION,
  facts,
  LATENCY,
  LATENCY_RATE,
  MEMORY_LARGE,
  MEMORY_SMALL,
  notes,
  results,
  SINGLE_TOTAL,
  scale,
  WARMUP,
  WORKER_CONCURRENCY,
  WORKERS,
} from './wal-common.ts';
import type { HttpRow } from './wal-http.ts';
import { MEMORY_BACKENDS } from './wal-memory.ts';

const has = (key: string) => Number.isFinite(results[key]);
const r = (key: string) => (has(key) ? String(Math.round(results[key]!)) : '–');
const ratio = (a: string, b: string) =>
  has(a) && has(b) ? `${(results[a]! / results[b]!).toFixed(2)}×` : '–';
const pair = (key: string) => `${r(`${key}P50`)} / ${r(`${key}P99`)}`;
/** "met" / "NOT met" when both figures exist, else "not measured". */
const target = (a: string, b: string, factor: number) =>
  has(a) && has(b)
    ? `${ratio(a, b)}: ${results[a]! >= factor * results[b]! ? 'met' : 'NOT met'}`
    : 'not measured';
const mib = (bytes: number | undefined) => (bytes === undefined ? '–' : (bytes / 2 ** 20).toFixed(1));

export function walReport(parts: string[], http: HttpRow | undefined): { body: string; summary: string } {
  const skipped = ['pg', 'http', 'redis', 'memory'].filter((part) => !parts.includes(part));
  if (skipped.length > 0) notes.push(`Parts not run (BENCH_ONLY): ${skipped.join(', ')}.`);
  const boss = `pg-boss ${facts['bossVersion'] ?? ''}`.trim();
  const bull = `BullMQ ${facts['bullmqVersion'] ?? ''}`.trim();
  const pgTable = [
    `| Measure | Mercato (PostgreSQL backend) | ${boss} | Mercato / pg-boss |`,
    '|---|---:|---:|---:|',
    `| Single writes/s, ${CONCURRENCY} callers, outbox \`wal.write\`, one transaction per message (no group commit) vs \`send\` | ${r('mercatoSingleNoGroup')} | ${r('bossSend')} | ${ratio('mercatoSingleNoGroup', 'bossSend')} |`,
    `| Single writes/s, ${CONCURRENCY} callers, group committer (the HTTP write path; ${results['groupRowsPerFlush']?.toFixed(1) ?? '–'} rows per commit) vs \`send\` | ${r('mercatoSingleGroup')} | ${r('bossSend')} | ${ratio('mercatoSingleGroup', 'bossSend')} |`,
    `| Batch writes/s, ${BATCH_SIZE} per transaction, one caller: \`wal.write\` vs \`insert\` | ${r('mercatoBatch')} | ${r('bossBatch')} | ${ratio('mercatoBatch', 'bossBatch')} |`,
    `| Delivery/s to a no-op handler, ${DELIVER} written first: delivery engine, internal handler \`{ inbox: false }\`, vs \`work\` (batchSize 64, localConcurrency ${WORKER_CONCURRENCY}) | ${r('mercatoDeliver')} | ${r('bossDeliver')} | ${ratio('mercatoDeliver', 'bossDeliver')} |`,
    `| Delivery/s, same, Mercato's handler with the inbox (one PostgreSQL transaction and inbox row per message) | ${r('mercatoDeliverInbox')} | ${r('bossDeliver')} | ${ratio('mercatoDeliverInbox', 'bossDeliver')} |`,
    `| End-to-end latency, write to handler start, ${LATENCY} single writes at ${LATENCY_RATE}/s, p50 / p99 ms | ${pair('mercatoLatency')} | ${pair('bossLatency')} | |`,
    `| Lateness of ${DELAYED} delayed messages (1–3 s), p50 / p99 ms (completion minus due) | ${pair('mercatoLate')} | ${pair('bossLate')} | |`,
    http
      ? `| HTTP \`POST /api/v1/wal/write\`, 64 connections, ${DURATION} s (${http.tool}): requests/s, p50 / p99 ms (errors ${http.errors}, non-2xx ${http.non2xx}) | ${http.rps}, ${http.p50} / ${http.p99} | no HTTP API | |`
      : '| HTTP `POST /api/v1/wal/write` | not measured (see notes) | no HTTP API | |',
    `| HTTP, same load, to a namespace with one HTTP target (a receiver in the bench process answering 204) that the same server delivers to meanwhile: requests/s, p50 / p99 ms; deliveries/s | ${r('httpWebhookRps')}, ${results['httpWebhookP50'] ?? '–'} / ${results['httpWebhookP99'] ?? '–'}; ${r('httpWebhookDelivered')} | | |`,
    `| The floor, same load: Fastify and one group-committed INSERT into a table of its own, nothing else (wal-http-floor.ts), requests/s, p50 / p99 ms | ${r('httpFloorRps')}, ${results['httpFloorP50'] ?? '–'} / ${results['httpFloorP99'] ?? '–'} | | |`,
  ].join('\n');
  const redisTable = [
    `| Measure | Mercato (Redis Streams backend) | ${bull} | Mercato / BullMQ |`,
    '|---|---:|---:|---:|',
    `| Single writes/s, ${CONCURRENCY} callers: \`append([row])\` vs \`add\` | ${r('redisSingle')} | ${r('bullSingle')} | ${ratio('redisSingle', 'bullSingle')} |`,
    `| Batch writes/s, ${BATCH_SIZE} per call, one caller: \`append(rows)\` vs \`addBulk\` | ${r('redisBatch')} | ${r('bullBatch')} | ${ratio('redisBatch', 'bullBatch')} |`,
    `| Delivery/s to a no-op handler, ${DELIVER} written first: \`consume\` + stream delivery, internal handler \`{ inbox: false }\`, vs Worker (concurrency ${WORKER_CONCURRENCY}) | ${r('redisDeliver')} | ${r('bullDeliver')} | ${ratio('redisDeliver', 'bullDeliver')} |`,
    `| Delivery/s, same, Mercato's handler with the inbox (one PostgreSQL transaction per message) | ${r('redisDeliverInbox')} | ${r('bullDeliver')} | ${ratio('redisDeliverInbox', 'bullDeliver')} |`,
    `| End-to-end latency, write to handler start, ${LATENCY} single writes at ${LATENCY_RATE}/s, p50 / p99 ms | ${pair('redisLatency')} | ${pair('bullLatency')} | |`,
    `| Lateness of ${DELAYED} delayed messages (1–3 s), p50 / p99 ms (handler start minus due) | ${pair('redisLate')} | ${pair('bullLate')} | |`,
  ].join('\n');
  const memRows = MEMORY_BACKENDS.map((backend) => {
    const small = results[`mem:${backend}:rssSmall`];
    const large = results[`mem:${backend}:rssLarge`];
    const growth = small && large ? `${(((large - small) / small) * 100).toFixed(1)}%` : '–';
    const verdict = small && large ? (Math.abs(large - small) <= 0.1 * small ? 'met' : 'NOT met') : '–';
    const heap = `${mib(results[`mem:${backend}:heapSmall`])} / ${mib(results[`mem:${backend}:heapLarge`])}`;
    const label = backend === 'bullmq' ? `${bull} (Queue + Worker)` : `Mercato, ${backend} backend`;
    return `| ${label} | ${mib(small)} | ${mib(large)} | ${growth} | ${heap} | ${verdict} |`;
  });
  const memTable = [
    `| Process (writes and delivers to a no-op handler) | RSS MiB after ${MEMORY_SMALL} | RSS MiB after ${MEMORY_LARGE} | Growth | Heap used MiB (same points) | Within 10% |`,
    '|---|---:|---:|---:|---:|---|',
    ...memRows,
  ].join('\n');
  const memVerdict = MEMORY_BACKENDS.filter((b) => b !== 'bullmq')
    .map((b) => {
      const small = results[`mem:${b}:rssSmall`];
      const large = results[`mem:${b}:rssLarge`];
      if (!small || !large) return `${b} not measured`;
      return `${b} ${(((large - small) / small) * 100).toFixed(1)}%: ${Math.abs(large - small) <= 0.1 * small ? 'met' : 'NOT met'}`;
    })
    .join('; ');
  const verdict = [
    `- PostgreSQL backend writes at least 3× pg-boss \`send\`: group committer ${target('mercatoSingleGroup', 'bossSend', 3)}; batches vs \`insert\` (no target named) ${ratio('mercatoBatch', 'bossBatch')}.`,
    `- PostgreSQL backend delivers at least 2× pg-boss processing (no-op handler, no inbox): ${target('mercatoDeliver', 'bossDeliver', 2)}.`,
    `- Redis Streams backend at least matches BullMQ: single writes ${target('redisSingle', 'bullSingle', 1)}; batches ${target('redisBatch', 'bullBatch', 1)}; delivery ${target('redisDeliver', 'bullDeliver', 1)}.`,
    http
      ? `- HTTP 10,000 writes/s with p99 under 50 ms at 64 connections: ${http.rps}/s, p99 ${http.p99} ms: ${http.rps >= 10_000 && http.p99 < 50 ? 'met' : 'NOT met'} (the floor on this machine: ${r('httpFloorRps')}/s).`
      : '- HTTP 10,000 writes/s with p99 under 50 ms at 64 connections: not measured.',
    `- Lateness p99 under 100 ms: PostgreSQL ${r('mercatoLateP99')} ms, Redis Streams ${r('redisLateP99')} ms.`,
    `- Memory within 10% between ${MEMORY_SMALL} and ${MEMORY_LARGE} messages: ${memVerdict || 'not measured'}.`,
  ].join('\n');
  const redis = facts['redisVersion']
    ? `Redis ${facts['redisVersion']} on loopback (appendonly ${facts['redisAppendonly']}, appendfsync ${facts['redisAppendfsync']}, save "${facts['redisSave']}")`
    : 'Redis not reached';
  const body = `## WAL (\`npm run bench:wal\`)

Run ${new Date().toISOString().slice(0, 10)}${scale === 1 ? '' : ` at BENCH_SCALE=${scale} (NOT a full run)`}, parts ${parts.join(', ')}.
PostgreSQL ${facts['pgVersion'] ?? '?'} on loopback (synchronous_commit ${facts['syncCommit'] ?? '?'}), ${redis}.
Every side runs in this one process (memory: in a child process each), with the same 1 KiB JSON
payload, and answers a write only once its server acknowledged it: PostgreSQL after commit
(Mercato and pg-boss on their own database of the same server, pools of ${facts['dbPoolSize'] ?? '?'}
connections); Redis after the command (Mercato's Lua append and BullMQ's \`add\` get the same
durability, whatever the server's persistence above gives). ${SINGLE_TOTAL} single writes per row
after ${WARMUP} untimed ones, ${BATCHES} batches of ${BATCH_SIZE}. The HTTP row runs the real server
(\`mercato start\`, MERCATO_WORKERS=${WORKERS}, its consumers running) with ${http?.tool ?? 'wrk'} on the same
machine after a 2 s warm-up (wrk when installed, \`apt install wrk\`; autocannon otherwise), writing
to a postgres namespace with no targets: each message is stored \`delivered\` at its write, as the
write path does for any message with nothing to deliver, so the row measures writing; delivery has
rows of its own above.
Machine: ${describeMachine()}.

### PostgreSQL backend vs pg-boss

${pgTable}

### Redis Streams backend vs BullMQ

${redisTable}

### Resident memory

${memTable}

Targets:
${verdict}
${notes.length > 0 ? `\nNotes: ${notes.join(' ')}\n` : ''}
How it is measured. Delivery rows time from starting the consumer on a backlog until every
message is done: Mercato PostgreSQL, \`state = 'delivered'\` in \`wal.messages\` (with its attempt
row); pg-boss, \`state = 'completed'\`; Mercato Redis Streams, every ack decision returned to the
backend; BullMQ, every \`completed\` event. Mercato's internal target runs through the real target
dispatch; \`{ inbox: false }\` runs the handler without the per-message PostgreSQL transaction,
which is what pg-boss's and BullMQ's no-op workers do too. Both Mercato backends run up to
consumerConcurrency=${WORKER_CONCURRENCY} handlers per namespace, pg-boss \`localConcurrency\` ${WORKER_CONCURRENCY},
BullMQ Worker concurrency ${WORKER_CONCURRENCY}. Latency rows write one message at a time at a fixed rate
with the consumer running and take handler start minus the write's creation time (Mercato
\`createdAt\`, BullMQ \`job.timestamp\`, pg-boss \`createdOn\`). Lateness: PostgreSQL rows are
\`delivered_at - due_at\` and \`completed_on - start_after\` (pg-boss polls every 0.5 s); Redis rows are
handler start minus due time (\`dueAt\`; \`timestamp + delay\`). The ${DELAYED} messages fall due over 2 s.
BullMQ jobs have \`removeOnComplete: true, removeOnFail: true\` (no completed jobs kept in Redis).
Memory: one child process per backend (node --expose-gc) writes in batches of ${BATCH_SIZE}, never more
than ${20 * BATCH_SIZE} ahead of delivery, to a no-op handler (\`{ inbox: false }\` for Mercato); at
each point, once every message so far is delivered, it waits 1 s, forces a full GC and reports
\`process.memoryUsage()\`. RSS includes heap pages V8 keeps committed after a GC (heapTotal, in the
log) and what the allocator keeps, so it climbs over the first tens of thousands of messages and
then levels off; heap used shows whether live objects grow. A run with BENCH_SCALE below 1 takes
its first point before that plateau, so its growth figure says little.`;
  return { body, summary: `${pgTable}\n\n${redisTable}\n\n${memTable}\n\n${verdict}\n${notes.join('\n')}` };
}
