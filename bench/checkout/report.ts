/** The tables and verdicts `npm run bench:checkout` prints and writes into bench/README.md. */
import { CALLS } from './flow.ts';
import type { Tally } from './loop.ts';
import type { MercatoTally } from './mercato-runs.ts';

export type Figures = {
  date: string;
  machine: string;
  pgVersion: string;
  dbosVersion: string;
  workers: string;
  mercatoPool: string;
  dbosPools: { tables: number; system: number };
  duration: number;
  warmup: number;
  flows: number;
  warmupFlows: number;
  clients: number;
  variants: number;
  /** Mercato, one client, whole checkouts (per call and whole). */
  single?: Tally;
  /** Mercato, CLIENTS customers looping whole checkouts. */
  flowsRun?: MercatoTally;
  /** Mercato, CLIENTS clients POSTing /orders on prepared carts. */
  sagas?: MercatoTally & { carts: number };
  dbosSingle?: Tally;
  dbos?: Tally;
  checks: string[];
  /** 1-minute load averages when the run started and when its last load ended. */
  load: { before: number; after?: number };
  notes: string[];
};

const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const notCompleted = (t: Tally) => {
  const failed = t.attempts - t.completed;
  if (failed === 0) return '0';
  const why = Object.entries(t.problems)
    .map(([problem, n]) => `${n} × ${problem}`)
    .join('; ');
  return `${failed} (${why})`;
};

/** The same text stands in the section before any full run. */
export const HOW = [
  'How it is measured. Mercato runs as `mercato start` on a fresh database `mercato_bench_checkout`; the',
  "bench tenant's admin creates 200 products of one variant each (EUR 10.00 to 59.00, 1,000,000 on hand),",
  'a shipping option to Germany (EUR 4.90) and 19% German VAT through the routes. A checkout is a guest',
  "shopper's six calls (anonymous, `X-Tenant`, the cart's token in `X-Cart-Token`): `POST /api/v1/cart`, two",
  '`POST /api/v1/cart/items` (one unit each of two different variants drawn at random with a seeded PRNG, so',
  '64 customers do not queue on one row), `PUT /api/v1/cart/addresses` (Berlin), `PUT',
  '/api/v1/cart/shipping-option`, then `POST /api/v1/orders` with an `Idempotency-Key` of its own and the test',
  "provider's succeeding token `tok_visa`. It counts as completed only when every call succeeded and the order",
  'came back 201 with status `completed`; anything else (a 202 still running after MERCATO_CHECKOUT_INLINE_MS,',
  'a 409, an error) is counted under "not completed" with its answer. Each client is closed-loop (the next',
  'call when the last answered), over node:http with keep-alive; latencies are of completed checkouts, timed',
  'in the bench process. The `POST /orders`-only run prepares its carts first (calls 1 to 5, untimed), then 64',
  'clients only place orders, each on a cart of its own, for the same time or until the prepared carts run',
  'out: that is the saga compared with DBOS. The last column counts the sagas Mercato completed during the',
  'run (`checkout.sagas.finished_at` within it), answered 201 or not: an order answered 202 completes later.',
  'Before the 64-customer run, and before the `POST /orders`-only run once its carts are prepared, the bench',
  'analyzes the database, as autovacuum (off on this machine) would have after the rows the part before added.',
  '',
  'The DBOS peer (bench/checkout/dbos-server.ts) is a child process of its own: Fastify (JSON-schema-checked',
  'body and `Idempotency-Key` header) and `@dbos-inc/dbos-sdk`, whose `POST /checkout` starts a durable',
  'workflow with the `Idempotency-Key` as its id and awaits its result. On tables of its own (database',
  "`dbos_bench_checkout`, which also holds DBOS's system tables) the workflow runs three `DBOS.runStep`s:",
  'reserve (one transaction: `reserved = reserved + 1 where on_hand - reserved >= 1` on both stock rows in id',
  'order, and the order row with its total), pay (a simulated PSP: one charge row keyed by the workflow id)',
  'and confirm (one transaction: the order to `completed` and both rows committed, `on_hand -= 1, reserved -=',
  "1`). DBOS records the workflow's start, each step's output and its end, so a crash resumes it after the",
  'last finished step. Its clients send the same random pairs of the same 200 items; 201 with status',
  '`completed` counts as completed.',
  '',
  'What Mercato does in `POST /api/v1/orders` that the peer does not: it reads the guest cart by its',
  "token's hash and checks it against the catalog and stock now (prices, tax, shipping); checks the",
  'Idempotency-Key against the orders of the same shopper, with a hash of the body; numbers the order from a',
  'per-shop counter (one row every order of the shop updates); writes the order, its lines, addresses, totals',
  'and history; runs four saga steps, not three (validate checks each variant is still for sale at its price;',
  'reserve writes a reservation, its lines and inventory ledger rows; authorize calls the test payment',
  'provider, which keeps its own charge ledger in transactions of its own, and writes a payment row; confirm',
  'commits the reservation with ledger rows and captures the payment through the provider again), each',
  "step's attempt logged before its effect and its outcome with the order's status change after it, under a",
  'lease and a deadline (a watchdog message scheduled per saga); it publishes CloudEvents for every change',
  '(order, inventory, payment) into the WAL in the same transactions, delivered to their subscribers',
  'meanwhile; it deletes the cart; every transaction runs as a role under row-level security with the tenant',
  'set in it; and it answers with the whole order (lines, totals, history). What the peer does that Mercato',
  'does not: DBOS checkpoints each step in its system tables (Mercato logs each attempt in its own saga tables',
  'instead, the same durability), and it reads nothing but its two stock rows. Pools: Mercato 20 connections',
  "(MERCATO_DB_POOL_SIZE), the peer 10 for its tables plus DBOS's system pool of 10; one process each",
  '(MERCATO_WORKERS=1). The five calls before `POST /orders` have no peer: the DBOS side is given its cart as',
  'the request body. The DBOS side cannot answer 202: it awaits its workflow however long it takes.',
];

export function report(f: Figures): { body: string; summary: string } {
  const lines: string[] = [];
  const verdicts: string[] = [];
  if (f.single || f.dbosSingle) {
    lines.push(
      `### Single client (${f.flows} one after another, after ${f.warmupFlows} untimed)`,
      '',
      '| Call | p50 ms | p99 ms | Completed | Not completed |',
      '|---|---:|---:|---:|---|',
    );
    if (f.single) {
      const s = f.single;
      CALLS.forEach((call, i) => {
        const q = s.calls?.[i];
        lines.push(`| Mercato \`${call}\` | ${q?.p50 ?? '–'} | ${q?.p99 ?? '–'} | | |`);
      });
      lines.push(
        `| Mercato, whole checkout (the six calls) | ${s.p50} | ${s.p99} | ${s.completed} | ${notCompleted(s)} |`,
      );
    }
    if (f.dbosSingle) {
      const d = f.dbosSingle;
      lines.push(
        `| DBOS \`POST /checkout\` (one workflow) | ${d.p50} | ${d.p99} | ${d.completed} | ${notCompleted(d)} |`,
      );
    }
    lines.push('');
  }
  if (f.flowsRun || f.sagas || f.dbos) {
    lines.push(
      `### ${f.clients} concurrent clients (${f.duration} s each, after a ${f.warmup} s warm-up)`,
      '',
      '| Run | Completed/s | p50 ms | p99 ms | Completed | Seconds | Not completed | Sagas the server finished meanwhile, /s |',
      '|---|---:|---:|---:|---:|---:|---|---:|',
    );
    const row = (name: string, t: Tally | MercatoTally) =>
      `| ${name} | ${t.rate} | ${t.p50} | ${t.p99} | ${t.completed} | ${t.seconds} | ${notCompleted(t)} | ${'sagasPerSecond' in t ? `${t.sagasPerSecond} (${t.sagasFinished})` : '–'} |`;
    if (f.flowsRun) lines.push(row('Mercato, whole checkouts (six calls each)', f.flowsRun));
    if (f.sagas) {
      lines.push(
        row(
          `Mercato, \`POST /api/v1/orders\` only (${f.sagas.carts} carts prepared beforehand${f.sagas.ranOut ? ', all used: the run stopped early' : ''})`,
          f.sagas,
        ),
      );
    }
    if (f.dbos) lines.push(row('DBOS, `POST /checkout` (one workflow: reserve, pay, confirm)', f.dbos));
    lines.push('');
  }
  if (f.sagas && f.dbos) {
    const ratio = f.sagas.rate / f.dbos.rate;
    verdicts.push(
      `Completed sagas at ${f.clients} clients: Mercato ${f.sagas.rate}/s, ${fixed(ratio, 2)}× DBOS's ${f.dbos.rate}/s` +
        ` (target 3× or more): ${ratio >= 3 ? 'met' : 'NOT met'}.`,
    );
  }
  if (f.single?.calls) {
    const p50 = f.single.calls[CALLS.length - 1]!.p50;
    verdicts.push(
      `\`POST /api/v1/orders\` p50 for a single client ${p50} ms (target under 15 ms; Medusa's published cart` +
        ` completion is 1,357 ms): ${p50 < 15 ? 'met' : 'NOT met'}.`,
    );
  }
  if (f.flowsRun) {
    verdicts.push(
      `Whole checkouts at ${f.clients} customers: ${f.flowsRun.rate}/s, p50 ${f.flowsRun.p50} ms (no target named).`,
    );
  }
  const head = [
    '## Checkout (`npm run bench:checkout`)',
    '',
    `Run ${f.date}. Mercato (\`mercato start\`, MERCATO_WORKERS=${f.workers}, pool ${f.mercatoPool}) and the DBOS peer`,
    `(\`@dbos-inc/dbos-sdk\` ${f.dbosVersion} under Fastify, pools ${f.dbosPools.tables} + ${f.dbosPools.system}) each a child process,`,
    `one after the other; ${f.variants} items; the clients in the bench process; PostgreSQL ${f.pgVersion} on loopback.`,
    `Machine: ${f.machine}. Load average (1 min) when the run started: ${fixed(f.load.before, 2)};` +
      ` when its last load ended: ${fixed(f.load.after ?? Number.NaN, 2)}.`,
    '',
  ];
  const body = [
    ...head,
    ...lines,
    ...verdicts,
    ...(f.checks.length ? ['', ...f.checks] : []),
    '',
    ...HOW,
    ...(f.notes.length ? ['', ...f.notes] : []),
  ].join('\n');
  return { body, summary: [...lines, ...verdicts, ...f.checks, ...f.notes].join('\n') };
}
