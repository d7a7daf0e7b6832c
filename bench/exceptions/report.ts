/** The table `npm run bench:exceptions` prints and writes into bench/README.md. */
import type { LoadResult } from '../commerce/load.ts';
import type { CaptureResult } from './capture.ts';

export const TARGETS = { capturePerSecond: 5000, searchP95: 50, summaryP95: 100 };

export type Figures = {
  date: string;
  machine: string;
  pgVersion: string;
  workers: string;
  rows: number;
  seedSeconds?: number;
  connections: number;
  capture?: CaptureResult;
  list?: LoadResult;
  search?: LoadResult;
  summary?: LoadResult;
  notes: string[];
};

const verdict = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? 'met' : '**not met**');
const latency = (r: LoadResult | undefined) => (r ? `${r.p50} / ${r.p95} / ${r.p99} ms` : '–');
const rate = (r: LoadResult | undefined) => (r ? `${r.rps}/s (${r.non2xx + r.errors} not 2xx)` : '–');

export function report(f: Figures): string {
  const c = f.capture;
  const lines = [
    `Run of ${f.date} on ${f.machine}; PostgreSQL ${f.pgVersion}; MERCATO_WORKERS=${f.workers}.`,
    '',
    '| Measure | Mercato | Target | Verdict |',
    '|---|---|---|---|',
    c
      ? `| capture through the WAL (${c.events.toLocaleString('en-US')} events in batches of ${c.batch}, ${c.writers} writers; counted when queryable) | ${c.capturedPerSecond.toLocaleString('en-US')}/s (writes acknowledged at ${c.writesPerSecond.toLocaleString('en-US')}/s; machine CPU ${c.cpuMsPerEvent ?? '–'} ms per event) | ≥ ${TARGETS.capturePerSecond.toLocaleString('en-US')}/s | ${verdict(c.capturedPerSecond >= TARGETS.capturePerSecond)} |`
      : '| capture | – | | |',
    `| list with filters, p50 / p95 / p99 at ${f.connections} connections (${f.rows.toLocaleString('en-US')} rows) | ${latency(f.list)}; ${rate(f.list)} | – | – |`,
    `| full-text search, p50 / p95 / p99 | ${latency(f.search)}; ${rate(f.search)} | p95 < ${TARGETS.searchP95} ms | ${verdict(f.search && f.search.p95 < TARGETS.searchP95)} |`,
    `| summary, p50 / p95 / p99 | ${latency(f.summary)}; ${rate(f.summary)} | p95 < ${TARGETS.summaryP95} ms | ${verdict(f.summary && f.summary.p95 < TARGETS.summaryP95)} |`,
  ];
  if (f.seedSeconds !== undefined)
    lines.push(
      '',
      `Filling the table to ${f.rows.toLocaleString('en-US')} rows in SQL took ${f.seedSeconds} s.`,
    );
  for (const note of f.notes) lines.push('', note);
  return lines.join('\n');
}
