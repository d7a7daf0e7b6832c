/** The tables and verdicts `npm run bench:commerce` prints and writes into bench/README.md. */
import type { HotRow } from './hot-sku.ts';
import type { LoadResult } from './load.ts';
import type { ReadRows } from './reads.ts';
import type { SearchRow } from './search.ts';

export type Figures = {
  date: string;
  machine: string;
  pgVersion: string;
  workers: string;
  duration: number;
  warmup: number;
  products: number;
  variants: number;
  import?: { seconds: number; failed: number; requests: number; batchSize: number; inFlight: number };
  /** Seconds the server took to deliver the import's events to their subscribers afterwards. */
  drainSeconds?: number;
  search?: SearchRow[];
  /** The same searches on a server started with MERCATO_SEARCH_CACHE_TTL_SECONDS=0. */
  searchUncached?: SearchRow[];
  hot?: HotRow;
  reads?: ReadRows;
  cart?: { cart: LoadResult; carts: number };
  /** 1-minute load averages when the run started and when its last load ended. */
  load: { before: number; after?: number };
  notes: string[];
};

const fixed = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const pct = (n: number) => `${Math.round(n * 100)}%`;
const okOf = (result: LoadResult) => `${result.errors} / ${result.non2xx}`;
const perSecond = (accepted: number, result: LoadResult) => Math.round(accepted / result.seconds);

export function report(f: Figures): { body: string; summary: string } {
  const lines: string[] = [];
  const verdicts: string[] = [];
  if (f.import) {
    const rate = f.products / f.import.seconds;
    lines.push(
      `Catalog: ${f.products} products, ${f.variants} variants, generated with a seeded PRNG` +
        ` (bench/commerce/generator.ts) and imported through \`POST /api/v1/products/batch\`` +
        ` (${f.import.batchSize} per request, ${f.import.inFlight} requests in flight): ${fixed(f.import.seconds)} s,` +
        ` ${Math.round(rate)} products/s, ${f.import.failed} rows refused.` +
        (f.drainSeconds !== undefined
          ? ` The server then delivered the import's events to their subscribers for ${fixed(f.drainSeconds)} s more;` +
            ' then it was restarted (as after a deploy), and each part below starts once the WAL has delivered' +
            ' everything due.'
          : ''),
      '',
    );
  }
  if (f.search && f.search.length > 0) {
    lines.push(
      '### Search (16 connections, anonymous shoppers)',
      '',
      '| Query | Route | Requests/s | p50 ms | p95 ms | p99 ms | Errors / non-2xx | Found (of 50) | Floor `ILIKE` req/s | Floor p50 / p95 / p99 ms | Floor found |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...f.search.map(
        (r) =>
          `| ${r.kind} | \`${r.route}\` | ${r.mercato.rps} | ${r.mercato.p50} | ${r.mercato.p95} | ${r.mercato.p99} | ${okOf(r.mercato)} | ${pct(r.found.mercato)} | ${r.floor?.rps ?? '–'} | ${r.floor ? `${r.floor.p50} / ${r.floor.p95} / ${r.floor.p99}` : '–'} | ${r.found.floor === undefined ? '–' : pct(r.found.floor)} |`,
      ),
      '',
    );
    for (const r of f.search) {
      verdicts.push(
        `Search ${r.kind}: p95 ${r.mercato.p95} ms (target under 20 ms): ${r.mercato.p95 < 20 ? 'met' : 'NOT met'}.`,
      );
    }
  }
  if (f.searchUncached && f.searchUncached.length > 0) {
    lines.push(
      '### Search without the answer cache (`MERCATO_SEARCH_CACHE_TTL_SECONDS=0`, same queries and connections)',
      '',
      'Every request runs its SQL. The table above is the default configuration: each process reuses an answer',
      'until the shop changes (src/catalog/search/README.md, "Answer cache"); the 200 queries of a kind rotate,',
      'so after the first pass nearly every request there is answered from memory.',
      '',
      '| Query | Route | Requests/s | p50 ms | p95 ms | p99 ms | Errors / non-2xx | Found (of 50) |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...f.searchUncached.map(
        (r) =>
          `| ${r.kind} | \`${r.route}\` | ${r.mercato.rps} | ${r.mercato.p50} | ${r.mercato.p95} | ${r.mercato.p99} | ${okOf(r.mercato)} | ${pct(r.found.mercato)} |`,
      ),
      '',
    );
    for (const r of f.searchUncached) {
      verdicts.push(
        `Search ${r.kind} without the answer cache: p95 ${r.mercato.p95} ms (target under 20 ms): ${r.mercato.p95 < 20 ? 'met' : 'NOT met'}.`,
      );
    }
  }
  if (f.hot) {
    const h = f.hot;
    const mercatoRate = perSecond(h.accepted, h.mercato);
    const floorRate = perSecond(h.floorAccepted, h.floor);
    lines.push(
      '### Hot SKU (64 connections, one unit each of one variant, until sold out)',
      '',
      '| Server | Stock | Reservations/s | Sold out in s | p50 ms | p99 ms | Accepted | Reserved after | Oversell |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| Mercato \`POST /api/v1/inventory/reserve\` | ${h.stock} | ${mercatoRate} | ${h.mercato.seconds} | ${h.mercato.p50} | ${h.mercato.p99} | ${h.accepted} | ${h.itemReserved} (reservations: ${h.reservations}, ${h.reservationUnits} units; ledger: ${h.ledgerReserved}) | ${h.oversell} |`,
      `| Floor: one plain \`UPDATE\` per request | ${h.stock} | ${floorRate} | ${h.floor.seconds} | ${h.floor.p50} | ${h.floor.p99} | ${h.floorAccepted} | ${h.floorReserved} | ${Math.max(h.floorAccepted, h.floorReserved) - h.stock} |`,
      '',
    );
    const ratio = mercatoRate / floorRate;
    verdicts.push(
      `Hot SKU: oversell ${h.oversell} (must be 0): ${h.oversell === 0 && h.itemReserved === h.stock ? 'met' : 'NOT met'}; item, reservations and ledger ${h.itemReserved === h.reservationUnits && h.reservationUnits === h.ledgerReserved ? 'agree' : 'DISAGREE'}.`,
      `Hot SKU: ${mercatoRate} reservations/s, ${fixed(ratio, 2)}× the floor's ${floorRate}/s (target 3× or more): ${ratio >= 3 ? 'met' : 'NOT met'}.`,
    );
  }
  if (f.reads || f.cart) {
    lines.push(
      '### Reads and cart',
      '',
      '| Route | Connections | Requests/s | p50 ms | p95 ms | p99 ms | Errors / non-2xx |',
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    const row = (r: LoadResult) =>
      `| ${r.name} | ${r.connections} | ${r.rps} | ${r.p50} | ${r.p95} | ${r.p99} | ${okOf(r)} |`;
    if (f.reads) lines.push(row(f.reads.live), row(f.reads.product));
    if (f.cart) lines.push(row(f.cart.cart));
    lines.push('');
    if (f.reads) {
      const ratio = f.reads.product.rps / f.reads.live.rps;
      verdicts.push(
        `Cached product read at ${pct(ratio)} of /health/live (target 60% or more; ${f.reads.products} products rotating): ${ratio >= 0.6 ? 'met' : 'NOT met'}.`,
      );
    }
    if (f.cart) {
      verdicts.push(
        `Cart adds: p50 ${f.cart.cart.p50} ms, p99 ${f.cart.cart.p99} ms at ${f.cart.cart.connections} connections (${f.cart.carts} guest carts rotating; no target named).`,
      );
    }
  }
  const head = [
    '## Commerce (`npm run bench:commerce`)',
    '',
    `Run ${f.date}, ${f.duration} s per measured load after a ${f.warmup} s warm-up (hot SKU: until sold out),`,
    `autocannon in the bench process, Mercato (\`mercato start\`, MERCATO_WORKERS=${f.workers}) and the floor`,
    `server (bench/commerce/floor-server.ts: Fastify + node-postgres, pool of 20) each a child process,`,
    `PostgreSQL ${f.pgVersion} on loopback. Latencies are every response of the measured run, timed by autocannon.`,
    `Machine: ${f.machine}. Load average (1 min) when the run started: ${fixed(f.load.before, 2)};` +
      ` when its last load ended: ${fixed(f.load.after ?? Number.NaN, 2)}.`,
    '',
  ];
  const how = [
    '',
    'How it is measured. Queries are drawn from the generated vocabulary (seeded, 200 of each kind, rotating',
    'per request): plain are one or two words of a product (`merino wool sweater`, `kestrel cushion`, `chinos`);',
    'typo the same with one letter swapped, dropped or doubled (`chinso`, `leaather loafers`); prefix 3 to 5',
    'letters of a brand, material or product word for `/products/suggest`; faceted a product word with its',
    'category (a root, middle or leaf of the tree), an EUR price range and `facets=true`. Every search asks for',
    '20 results. "Found" is the share of the first 50 queries of the set that returned at least one product.',
    "The search floor runs `select id, title from catalog.products where title ilike '%term%' limit 20` on",
    'the rows Mercato imported, as the superuser (no row-level security), with the same strings (for faceted,',
    'its word alone): it cannot correct typos and has no ranking, facets or filters; a term that matches',
    'little scans the whole table. The hot SKU floor is a table of its own',
    '(`on_hand`, `reserved`, a check that reserved never passes on hand) and one',
    '`update … set reserved = reserved + 1 where id = $1 and on_hand - reserved >= 1` per request, each its',
    "own transaction: 64 requests queue on the row's lock and each waits for the commit before it. Mercato's",
    'reservation also records the reservation, its line, a ledger row and a `mercato.inventory.reserved`',
    'event, all in the transaction it shares with the reservations that arrived with it. Between its',
    "warm-up (another variant) and the measured run the bench analyzes the inventory's tables, as",
    'autovacuum (off on this machine) would have by then.',
    'A reservation run stops at the first 409 INSUFFICIENT_STOCK; reservations/s is the accepted ones over',
    'the time from the first request to that answer. After it, the item (`GET /api/v1/inventory/{id}`),',
    "the active reservations' lines and the ledger's reserve rows are summed; oversell is the largest of",
    'them (and of the 2xx answers) less the stock. The product read rotates over the first 1,000 imported',
    'products, anonymous with X-Tenant; the cart adds rotate over 500 guest carts made first (`POST',
    '/api/v1/cart`, token in X-Cart-Token) and 20 variants stocked first, one unit a request, each request',
    'with an Idempotency-Key of its own.',
  ];
  const body = [...head, ...lines, ...verdicts, ...how, ...(f.notes.length ? ['', ...f.notes] : [])].join(
    '\n',
  );
  return { body, summary: [...lines, ...verdicts, ...f.notes].join('\n') };
}
