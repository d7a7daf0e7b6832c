/**
 * Part `search` of `npm run bench:commerce`: anonymous shoppers (X-Tenant) searching the imported
 * catalog at 16 connections, each kind of query against a rotating set drawn from the generated
 * vocabulary, beside the floor (`title ILIKE '%term%'`, floor-server.ts) on the same rows with the
 * same strings and connections.
 */
import type { Api } from './api.ts';
import type { FacetQuery, QuerySets } from './generator.ts';
import { type LoadResult, measure, rotate } from './load.ts';
import { DURATION, TENANT, WARMUP } from './setup.ts';

export const SEARCH_CONNECTIONS = 16;

export type SearchKind = 'plain' | 'typo' | 'prefix' | 'facet';
export type SearchRow = {
  kind: SearchKind;
  route: string;
  mercato: LoadResult;
  /** Absent on the pass without the answer cache (the floor does not change). */
  floor?: LoadResult;
  /** Share of the first queries of the set that found at least one product (Mercato, floor). */
  found: { mercato: number; floor?: number; sampled: number };
};

const enc = encodeURIComponent;

/** GET /api/v1/products with a category, a price range in EUR and facets. */
export function facetPath(q: FacetQuery, categoryIds: Map<string, string>): string {
  const category = categoryIds.get(q.category.join(' > '))!;
  return (
    `/api/v1/products?q=${enc(q.q)}&category=${category}&currency=EUR` +
    `&minPrice=${q.minPrice}&maxPrice=${q.maxPrice}&facets=true&limit=20`
  );
}

function pathsOf(kind: SearchKind, queries: QuerySets, categoryIds: Map<string, string>): string[] {
  switch (kind) {
    case 'plain':
      return queries.plain.map((q) => `/api/v1/products?q=${enc(q)}&limit=20`);
    case 'typo':
      return queries.typo.map((q) => `/api/v1/products?q=${enc(q)}&limit=20`);
    case 'prefix':
      return queries.prefix.map((q) => `/api/v1/products/suggest?q=${enc(q)}`);
    case 'facet':
      return queries.facet.map((q) => facetPath(q, categoryIds));
  }
}

const termsOf = (kind: SearchKind, queries: QuerySets): string[] =>
  kind === 'facet' ? queries.facet.map((q) => q.q) : queries[kind];

/** How many items an answer lists, whatever the route calls its array. */
function countOf(body: unknown): number {
  if (!body || typeof body !== 'object') return 0;
  for (const key of ['items', 'suggestions', 'products', 'terms']) {
    const value = (body as Record<string, unknown>)[key];
    if (Array.isArray(value)) return value.length;
  }
  return 0;
}

async function shareFound(api: Api, paths: string[], headers: Record<string, string>, sample: number) {
  let found = 0;
  for (const path of paths.slice(0, sample)) {
    const answer = await api.call('GET', path, undefined, headers);
    if (answer.status !== 200) {
      throw new Error(`GET ${path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 500)}`);
    }
    if (countOf(answer.body) > 0) found += 1;
  }
  return found / Math.min(sample, paths.length);
}

export async function runSearch(
  mercato: Api,
  floor: Api | undefined,
  queries: QuerySets,
  categoryIds: Map<string, string>,
  kinds: SearchKind[] = ['plain', 'typo', 'prefix', 'facet'],
): Promise<SearchRow[]> {
  const shopper = { 'x-tenant': TENANT };
  const rows: SearchRow[] = [];
  for (const kind of kinds) {
    const paths = pathsOf(kind, queries, categoryIds);
    const floorPaths = termsOf(kind, queries).map((q) => `/search?q=${enc(q)}`);
    const sampled = 50;
    const found = {
      mercato: await shareFound(mercato, paths, shopper, sampled),
      floor: floor ? await shareFound(floor, floorPaths, {}, sampled) : undefined,
      sampled,
    };
    const route = paths[0]!.replace(/\?.*/, '');
    const next = rotate(paths);
    const m = await measure({
      name: `search ${kind} (${route})`,
      base: mercato.base,
      connections: SEARCH_CONNECTIONS,
      duration: DURATION,
      warmup: WARMUP,
      next: (i) => ({ path: next(i), headers: shopper }),
    });
    if (!floor) {
      rows.push({ kind, route, mercato: m, found });
      continue;
    }
    const nextFloor = rotate(floorPaths);
    const f = await measure({
      name: `search ${kind} floor (ILIKE)`,
      base: floor.base,
      connections: SEARCH_CONNECTIONS,
      duration: DURATION,
      warmup: WARMUP,
      next: (i) => ({ path: nextFloor(i) }),
    });
    rows.push({ kind, route, mercato: m, floor: f, found });
  }
  return rows;
}
