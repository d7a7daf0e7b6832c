/** The tables, verdicts and sizing `npm run bench:flash` prints and writes into bench/README.md. */
import type { Check } from './checks.ts';
import type { Phase, SaleRun } from './client.ts';
import type { RedisCounters } from './setup.ts';

/** 1M orders per minute. */
export const TARGET_ORDERS_PER_SECOND = 1_000_000 / 60;

/** Redis's counters over a run: to the end of its selling phase, and over the whole sale. */
export type RedisUse = { selling?: RedisCounters; whole: RedisCounters };

export type Figures = {
  date: string;
  machine: string;
  pgVersion: string;
  redisVersion: string;
  workers: string;
  customers: number;
  units: number;
  limit: number;
  connections: number;
  soldOutSeconds: number;
  warmup: number;
  warmupUnits: number;
  pay: boolean;
  mercato?: SaleRun;
  mercatoCheck?: Check;
  mercatoRedis?: RedisUse;
  /** GET /api/v1/flash-sales/{id}/stats after the sale. */
  mercatoStats?: {
    attempts: number;
    admitted: number;
    rejected: Record<string, number>;
    /** SOLD_OUT answered before the token was verified (the sold-out memory's early answer). */
    unverifiedSoldOut?: number;
    admissionLatencyMs: { p50: number | null; p99: number | null };
  };
  bare?: SaleRun;
  textbook?: SaleRun;
  textbookCheck?: Check;
  textbookRedis?: RedisUse;
  /** 1-minute load averages when the run started and when its last load ended. */
  load: { before: number; after?: number };
  notes: string[];
};

const fixed = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const thousands = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const pp = (p: Phase | undefined) => (p ? `${p.p50} / ${p.p99}` : '–');
const answersOf = (run: SaleRun) =>
  Object.entries(run.answers)
    .sort((a, b) => b[1] - a[1])
    .map(([code, k]) => `${code} ×${k}`)
    .join(', ');

/** The same text stands in the section before any full run. */
export const HOW = [
  'How it is measured. One load client in the bench process drives all three servers alike: 256 keep-alive',
  'HTTP/1.1 connections of node:net, one attempt in flight on each, requests written from strings made once per',
  'customer (`POST /api/v1/flash-sales/{id}/orders`, the Bearer token, an Idempotency-Key of its own per attempt,',
  'body `{}`), answers read by a minimal parser; latency is from the write to the last byte of the answer. Each',
  'connection takes the next customer still trying, round robin over all of them. A customer answered 202 stops',
  '(as does one answered LIMIT_REACHED); the others go on. The selling phase ends when as many customers as',
  'units were admitted; then everyone left goes on for the sold-out phase. Every answer counts in the phase in',
  'which it arrived. Before each measured run, a warm-up of its own sale (another variant) for the warm-up seconds;',
  "after Mercato's warm-up the bench analyzes the database, as autovacuum (off on this machine) would have.",
  '',
  'Mercato runs as `mercato start` (MERCATO_WORKERS=1: client, server, PostgreSQL and Redis share the two',
  'cores) on a fresh database `mercato_bench_flash`, with `REDIS_URL` (its gate and rate limits on the shared',
  'Redis under a key prefix of its own) and MERCATO_FLASH_IP_RATE=100000000 (every bench connection comes from',
  "127.0.0.1; the per-customer limit stays at its default). The shop's admin creates the product, its stock",
  '(exactly the units) and the campaign (a limit of one per customer, a payment window of an hour) through the',
  'routes. The customers are inserted in three set-based statements (users, default shipping addresses, one',
  "session each) and signed in with access tokens signed with the server's own key from",
  '`platform.signing_keys` (100,000 argon2 logins would take longer than the sale): Mercato checks them as any',
  'other (signature, claims, and that the session stands). Attempts carry no payment token, so the checkout',
  'saga does no work during the measurement: the admitted orders wait for payment (BENCH_PAY=1 sends',
  '`tok_visa`; such runs do not rewrite this section). A 202 from Mercato means the order exists in PostgreSQL.',
  'Afterwards SQL checks the admissions, `orders.orders` and the inventory item and reservations against the',
  'answers; orders created per second are the orders of the sale over the selling phase.',
  '',
  'The bare peer (bench/flash/bare-server.ts) is Fastify answering 202 with a fixed admission-shaped body: no',
  "authentication, no gate, no record; it runs for as long as Mercato's whole sale, its customers never stop.",
  'The textbook peer (bench/flash/textbook-server.ts) is Fastify, the same EdDSA token verified with jose on',
  'every attempt (the public key of the same key), and one Lua script per attempt on the same Redis (units',
  'left? customer under the limit? `HINCRBY` and `DECR`), with no durable record, no idempotency and no',
  'sold-out shortcut; same customers, same phases. Redis figures come from `INFO` of the shared Redis (other',
  "clients' work included, if any ran meanwhile).",
];

/** Processes and Redis shards 1M orders per minute would take, from the measured figures. */
function sizing(f: Figures): string[] {
  const lines: string[] = [];
  const m = f.mercato;
  const ordersPerSecond = f.mercatoCheck?.ordersPerSecond;
  if (!m?.selling || !ordersPerSecond) return lines;
  const processes = Math.ceil(TARGET_ORDERS_PER_SECOND / ordersPerSecond);
  const perOrder = m.selling.attempts / f.units;
  lines.push(
    `1M orders per minute is ${thousands(TARGET_ORDERS_PER_SECOND)} orders/s. One Mercato process (with PostgreSQL,` +
      ` Redis and the client on the same two cores) created ${thousands(ordersPerSecond)} orders/s while answering` +
      ` ${thousands(m.selling.rate)} attempts/s (${fixed(perOrder, 1)} attempts per order in this sale): at that rate` +
      ` ${thousands(TARGET_ORDERS_PER_SECOND)} orders/s take ${processes} such processes, and a PostgreSQL that commits` +
      ` all their orders (the rate above includes PostgreSQL's share of the same cores); after the sell-out one process` +
      ` answered ${thousands(m.soldOut?.rate ?? Number.NaN)} attempts/s.`,
  );
  const r = f.mercatoRedis?.selling;
  if (r && r.cpu > 0) {
    const cpuPerOrderMs = (r.cpu * 1000) / f.units;
    const ordersPerShard = 1000 / cpuPerOrderMs;
    const shards = Math.ceil(TARGET_ORDERS_PER_SECOND / ordersPerShard);
    lines.push(
      `Redis: over Mercato's selling phase it ran ${thousands(r.scripts)} scripts and ${thousands(r.commands)} commands` +
        ` (${fixed(r.scripts / m.selling.attempts, 2)} scripts per attempt) in ${fixed(r.cpu, 2)} CPU s, ${fixed(cpuPerOrderMs, 3)}` +
        ` ms of Redis CPU per order: one shard (one core) keeps up with ${thousands(ordersPerShard)} orders/s of` +
        ` this sale's mix, so ${thousands(TARGET_ORDERS_PER_SECOND)} orders/s take ${shards} shard${shards === 1 ? '' : 's'}.` +
        " A campaign's gate keys share one hash tag, so one campaign lives on one shard: past one shard, the" +
        ' orders must come from several campaigns.',
    );
  }
  return lines;
}

export function report(f: Figures): { body: string; summary: string } {
  const lines: string[] = [];
  const verdicts: string[] = [];
  const runs: Array<[string, SaleRun, Check | undefined]> = [];
  if (f.mercato)
    runs.push([
      'Mercato (`mercato start`, Redis gate, group commit to PostgreSQL)',
      f.mercato,
      f.mercatoCheck,
    ]);
  if (f.bare) runs.push(['Bare Fastify answering 202', f.bare, undefined]);
  if (f.textbook)
    runs.push(['Textbook (Fastify, JWT, one Lua DECR, no record)', f.textbook, f.textbookCheck]);
  if (runs.length > 0) {
    lines.push(
      `### ${f.customers.toLocaleString('en-US')} customers, ${f.units.toLocaleString('en-US')} units, ${f.connections} connections`,
      '',
      '| Run | Selling: attempts/s | Sold out: attempts/s | Whole sale: attempts/s | p50 ms | p99 ms | Selling p50 / p99 ms | Sold out p50 / p99 ms | Seconds (selling + sold out) | Admitted (202) | Oversell | Orders created/s |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [name, run, check] of runs) {
      const seconds = run.selling
        ? `${run.selling.seconds} + ${run.soldOut!.seconds}`
        : `${run.whole.seconds}`;
      const admitted = run.selling ? String(run.admitted.length) : `(${run.answers['202'] ?? 0}, all)`;
      lines.push(
        `| ${name} | ${run.selling?.rate ?? '–'} | ${run.soldOut?.rate ?? '–'} | ${run.whole.rate} | ${run.whole.p50} |` +
          ` ${run.whole.p99} | ${pp(run.selling)} | ${pp(run.soldOut)} | ${seconds} | ${admitted} |` +
          ` ${check ? check.oversell : '–'} | ${check?.ordersPerSecond ?? '–'} |`,
      );
    }
    lines.push('');
    for (const [name, run] of runs) {
      lines.push(
        `${name.split(' (')[0]}: answers ${answersOf(run)}` +
          `${run.sellingEndedBy ? `; the selling phase ended on ${run.sellingEndedBy}` : ''}.`,
      );
    }
    lines.push('');
  }
  if (f.mercato && f.bare) {
    const ratio = f.mercato.whole.rate / f.bare.whole.rate;
    verdicts.push(
      `Attempts/s over the whole sale: Mercato ${f.mercato.whole.rate}/s, ${fixed(ratio)}× bare Fastify's` +
        ` ${f.bare.whole.rate}/s (target 0.7× or more): ${ratio >= 0.7 ? 'met' : 'NOT met'}.`,
    );
  }
  if (f.textbook && f.bare) {
    verdicts.push(
      `The textbook design: ${f.textbook.whole.rate}/s, ${fixed(f.textbook.whole.rate / f.bare.whole.rate)}× bare` +
        ' Fastify (the issue measured 0.48–0.54× on this machine).',
    );
  }
  if (f.mercato) {
    const p99 = f.mercato.whole.p99;
    verdicts.push(
      `Mercato p99 over the whole sale ${p99} ms (selling ${f.mercato.selling?.p99 ?? '–'} ms, sold out` +
        ` ${f.mercato.soldOut?.p99 ?? '–'} ms) (target under 50 ms): ${p99 < 50 ? 'met' : 'NOT met'}.`,
    );
  }
  if (f.mercatoCheck) {
    verdicts.push(
      `Oversell: Mercato ${f.mercatoCheck.oversell} (target 0): ${f.mercatoCheck.oversell === 0 && f.mercatoCheck.agree ? 'met' : 'NOT met'}` +
        `${f.textbookCheck ? `; the textbook design ${f.textbookCheck.oversell}` : ''}.`,
    );
  }
  const scale = sizing(f);
  const checks = [...(f.mercatoCheck?.lines ?? []), ...(f.textbookCheck?.lines ?? [])];
  if (f.mercatoStats) {
    const s = f.mercatoStats;
    checks.push(
      `Mercato's own stats after the sale (GET /api/v1/flash-sales/{id}/stats): attempts ${s.attempts}, admitted` +
        ` ${s.admitted}, rejected ${JSON.stringify(s.rejected)}, sold out before the token was verified` +
        ` ${s.unverifiedSoldOut ?? 0}, admission latency in the server p50` +
        ` ${s.admissionLatencyMs.p50 ?? '–'} ms, p99 ${s.admissionLatencyMs.p99 ?? '–'} ms.`,
    );
  }
  const t = f.textbookRedis?.whole;
  if (t && f.textbook && t.cpu > 0) {
    checks.push(
      `Redis under the textbook design: ${thousands(t.scripts)} scripts in ${fixed(t.cpu)} CPU s over its whole sale,` +
        ` ${fixed((t.cpu * 1e6) / Math.max(1, t.scripts), 1)} µs of Redis CPU per script.`,
    );
  }
  const head = [
    '## Flash sale (`npm run bench:flash`)',
    '',
    `Run ${f.date}. Mercato (\`mercato start\`, MERCATO_WORKERS=${f.workers}), the bare Fastify peer and the textbook peer`,
    `each a child process, one after the other; the client in the bench process; PostgreSQL ${f.pgVersion} and Redis`,
    `${f.redisVersion} on loopback. ${f.customers.toLocaleString('en-US')} signed-in customers, a sale of`,
    `${f.units.toLocaleString('en-US')} units, ${f.limit} per customer, ${f.connections} connections, a sold-out phase of ${f.soldOutSeconds} s,`,
    `a ${f.warmup} s warm-up on a sale of ${f.warmupUnits} units before each run; attempts ${f.pay ? 'with `tok_visa`' : 'without a payment token'}.`,
    `Machine: ${f.machine}. Load average (1 min) when the run started: ${fixed(f.load.before)};` +
      ` when its last load ended: ${fixed(f.load.after ?? Number.NaN)}.`,
    '',
  ];
  const body = [
    ...head,
    ...lines,
    ...verdicts,
    ...(scale.length ? ['', ...scale] : []),
    ...(checks.length ? ['', ...checks] : []),
    '',
    ...HOW,
    ...(f.notes.length ? ['', ...f.notes] : []),
  ].join('\n');
  return { body, summary: [...lines, ...verdicts, ...scale, ...checks, ...f.notes].join('\n') };
}
