/**
 * Loads the generated catalog into Mercato through its own routes: the category tree with
 * `POST /api/v1/categories` (parents first), then the products with `POST /api/v1/products/batch`,
 * BATCH_SIZE rows per request (the route's maximum), a few requests in flight, each row answered
 * on its own.
 */
import type { Api } from './api.ts';
import { categoryPaths, type GeneratedProduct, generateProduct, slugify } from './generator.ts';

export type LoadedCatalog = {
  /** Product ids in generation order (index i is product i). */
  productIds: string[];
  categoryIds: Map<string, string>;
  seconds: number;
  failed: number;
  requests: number;
};

/** The body of one product in the catalog's create/batch shape. */
export function productInput(p: GeneratedProduct, categoryIds: Map<string, string>) {
  return {
    title: p.title,
    handle: p.handle,
    description: p.description,
    status: 'active',
    categoryIds: [categoryIds.get(p.categoryPath.join(' > '))!],
    tags: p.tags,
    attributes: p.attributes,
    variants: p.variants.map((v) => ({
      sku: v.sku,
      title: v.title,
      options: v.options,
      prices: v.prices,
      compareAtPrices: v.compareAtPrices,
      weightGrams: v.weightGrams,
      barcode: v.barcode,
    })),
  };
}

export async function createCategories(api: Api): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const path of categoryPaths()) {
    const parentId = path.length > 1 ? ids.get(path.slice(0, -1).join(' > ')) : undefined;
    const created = await api.must<{ id: string }>('POST', '/api/v1/categories', {
      name: path.at(-1)!,
      handle: slugify(path.join(' ')),
      ...(parentId ? { parentId } : {}),
    });
    ids.set(path.join(' > '), created.id);
  }
  return ids;
}

type BatchRow = {
  index?: number;
  status: number | string;
  id?: string;
  error?: unknown;
  errors?: unknown;
};

/** Imports `count` products of `seed`, in order, BATCH_SIZE per request. */
export async function importProducts(
  api: Api,
  options: {
    seed: number;
    count: number;
    batchSize: number;
    inFlight: number;
    /** Run every `every` products imported (the bench's analyze, as autovacuum would). */
    periodic?: { every: number; run: () => Promise<unknown> };
  },
  categoryIds: Map<string, string>,
): Promise<LoadedCatalog> {
  const productIds: string[] = new Array(options.count);
  let failed = 0;
  let requests = 0;
  let next = 0;
  let shownErrors = 0;
  let lastLog = Date.now();
  let nextPeriodic = options.periodic?.every ?? Number.POSITIVE_INFINITY;
  const started = performance.now();
  const worker = async () => {
    while (next < options.count) {
      const from = next;
      next = Math.min(options.count, from + options.batchSize);
      const products: unknown[] = [];
      for (let i = from; i < next; i++)
        products.push(productInput(generateProduct(options.seed, i), categoryIds));
      const answer = await api.must<{ items?: BatchRow[]; results?: BatchRow[] }>(
        'POST',
        '/api/v1/products/batch',
        { products },
        { 'idempotency-key': `bench-import-${options.seed}-${from}` },
        [200, 201, 207],
      );
      requests += 1;
      const rows = answer.results ?? answer.items ?? [];
      rows.forEach((row, j) => {
        const i = from + (row.index ?? j);
        const id = row.id;
        if (id && row.status !== 'failed') {
          productIds[i] = id;
        } else {
          failed += 1;
          if (shownErrors++ < 5) console.error(`product ${i} refused:`, JSON.stringify(row).slice(0, 500));
        }
      });
      if (options.periodic && next >= nextPeriodic) {
        nextPeriodic += options.periodic.every;
        await options.periodic.run();
      }
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        const rate = next / ((performance.now() - started) / 1000);
        console.log(`import: ${next} of ${options.count} (${Math.round(rate)}/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { productIds, categoryIds, seconds, failed, requests };
}
