/**
 * Part `queries` of `npm run bench:exceptions`: with the table filled, the operator's three reads
 * at BENCH_QUERY_CONNECTIONS (16) connections, each for BENCH_DURATION seconds after a warm-up,
 * every request a different filter, search or range from a rotating set:
 * - list: GET /api/v1/exceptions with status, severity, type, customer, location or time filters;
 * - search: GET /api/v1/exceptions/search?q= over reason words, ids and payload text (newest first,
 *   the default; BENCH_SEARCH_SORT=relevance for the ranked order);
 * - summary: GET /api/v1/exceptions/summary over the last day, week or month, some filtered.
 */
import { type LoadResult, measure, rotate } from '../commerce/load.ts';
import { DURATION, WARMUP } from '../commerce/setup.ts';
import { CUSTOMERS, SEARCHES, WAREHOUSES } from './vocabulary.ts';

export const QUERY_CONNECTIONS = Number(process.env['BENCH_QUERY_CONNECTIONS'] ?? 16);
/** BENCH_SEARCH_SORT=relevance measures the ranked search instead of the default newest first. */
const SORT = process.env['BENCH_SEARCH_SORT'] ? `&sort=${process.env['BENCH_SEARCH_SORT']}` : '';

export type QueryResults = { list?: LoadResult; search?: LoadResult; summary?: LoadResult };

const days = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();

function listPaths(): string[] {
  const paths: string[] = [];
  for (let i = 0; i < 200; i++) {
    const filters = [
      'status=NEW',
      'severity=HIGH,CRITICAL',
      'interfaceType=ORDER&status=NEW',
      `customerId=CUST-${(i * 97) % CUSTOMERS}`,
      `locationCode=WH-${i % WAREHOUSES}&status=RETRIED_FAILED`,
      `category=TIMEOUT&from=${encodeURIComponent(days(7))}`,
      'status=ACKNOWLEDGED&sort=-occurrences',
      `from=${encodeURIComponent(days(1))}`,
    ];
    paths.push(`/api/v1/exceptions?${filters[i % filters.length]}&limit=50`);
  }
  return paths;
}

function searchPaths(): string[] {
  const paths: string[] = [];
  for (let i = 0; i < 200; i++) {
    const q = SEARCHES[i % SEARCHES.length]!.replace('#', String((i * 7919) % 20_000));
    paths.push(`/api/v1/exceptions/search?q=${encodeURIComponent(q)}&limit=20${SORT}`);
  }
  return paths;
}

function summaryPaths(): string[] {
  const ranges = [
    '',
    `from=${encodeURIComponent(days(7))}&bucket=day`,
    `from=${encodeURIComponent(days(30))}&bucket=day`,
    'interfaceType=ORDER',
    `severity=CRITICAL&from=${encodeURIComponent(days(7))}&bucket=day`,
  ];
  return ranges.map((r) => `/api/v1/exceptions/summary${r ? `?${r}` : ''}`);
}

export async function runQueries(base: string, token: string, parts: string[]): Promise<QueryResults> {
  const headers = { authorization: `Bearer ${token}` };
  const load = (name: string, paths: string[]) => {
    const next = rotate(paths);
    return measure({
      name,
      base,
      connections: QUERY_CONNECTIONS,
      duration: DURATION,
      warmup: WARMUP,
      next: (i) => ({ path: next(i), headers }),
    });
  };
  const results: QueryResults = {};
  if (parts.includes('list')) results.list = await load('GET /api/v1/exceptions (filters)', listPaths());
  if (parts.includes('search')) results.search = await load('GET /api/v1/exceptions/search', searchPaths());
  if (parts.includes('summary'))
    results.summary = await load('GET /api/v1/exceptions/summary', summaryPaths());
  return results;
}
