import { withTenant } from '../../platform/db/index.ts';
import type { EventMeta } from '../../platform/events/index.ts';
import type { CatalogDeps } from '../deps.ts';
import { loadProducts } from '../products/product-read.ts';
import { type ProductInput, refuseDuplicateSkus } from '../products/product-rules.ts';
import { lockedProduct } from '../products/product-service.ts';
import { insertProduct, replaceProduct, resolveCategories } from '../products/product-write.ts';
import { failed, prepareProductRow, type RowOutcome, sameAs, upsertProductRow } from './upsert-row.ts';

/** The most rows one chunk writes in one transaction. */
export const CHUNK_ROWS = 200;

type Row = { index: number; raw: unknown; input: ProductInput & { handle: string } };
type Written = Extract<RowOutcome, { id: string }>;

export type UpsertRowsOptions = {
  meta?: EventMeta | undefined;
  /** Each row's outcome, in row order, as soon as it is final. */
  onRow?: (index: number, outcome: RowOutcome) => void;
  log?: (error: unknown) => void;
  chunkRows?: number;
};

/**
 * Upserts many rows by handle, each answered on its own exactly as upsertProductRow answers it,
 * but fast: every row is checked in memory first (a bad one fails without touching the database),
 * then the good ones are written in chunks, one transaction per chunk that indexes the chunk's
 * products for search once and publishes its events in one call. A chunk whose transaction fails
 * (a SKU or handle another row or product holds, an unknown category, ...) is written again row by
 * row, so each failure is attributed to its own row and the others are still written.
 */
export async function upsertProductRows(
  deps: CatalogDeps,
  tenantId: string,
  rows: unknown[],
  options: UpsertRowsOptions = {},
): Promise<RowOutcome[]> {
  const outcomes: (RowOutcome | undefined)[] = new Array(rows.length);
  let reported = 0;
  const report = () => {
    while (reported < rows.length && outcomes[reported] !== undefined) {
      options.onRow?.(reported, outcomes[reported]!);
      reported += 1;
    }
  };
  const chunks: Row[][] = [];
  let chunk: Row[] = [];
  let handles = new Set<string>();
  for (const [index, raw] of rows.entries()) {
    const prepared = prepareProductRow(raw);
    if ('failed' in prepared) {
      outcomes[index] = prepared.failed;
      continue;
    }
    try {
      refuseDuplicateSkus(prepared.input.variants);
    } catch (error) {
      outcomes[index] = failed(error);
      continue;
    }
    // A handle written twice starts a new chunk: each event then carries the product as that row left it.
    if (chunk.length >= (options.chunkRows ?? CHUNK_ROWS) || handles.has(prepared.input.handle)) {
      chunks.push(chunk);
      chunk = [];
      handles = new Set();
    }
    chunk.push({ index, raw, input: prepared.input });
    handles.add(prepared.input.handle);
  }
  if (chunk.length > 0) chunks.push(chunk);
  report();
  for (const rowsOfChunk of chunks) {
    const written = await writeChunk(deps, tenantId, rowsOfChunk, options.meta);
    if (written) {
      rowsOfChunk.forEach((row, i) => {
        outcomes[row.index] = written[i];
      });
    } else {
      for (const row of rowsOfChunk) {
        outcomes[row.index] = await upsertProductRow(deps, tenantId, row.raw, options.meta, options.log);
        report();
      }
    }
    report();
  }
  return outcomes as RowOutcome[];
}

/** Writes the chunk's rows in one transaction; undefined when it failed (nothing of it is written). */
async function writeChunk(
  deps: CatalogDeps,
  tenantId: string,
  rows: Row[],
  meta: EventMeta | undefined,
): Promise<Written[] | undefined> {
  const touched = new Set<string>();
  try {
    return await withTenant(deps.db, tenantId, async (trx) => {
      const done: Written[] = [];
      // A chunk names each handle once (see upsertProductRows), so one lookup finds them all.
      const existing = new Map(
        (
          await trx
            .selectFrom('catalog.products')
            .select(['id', 'handle'])
            .where('tenant_id', '=', tenantId)
            .where(
              'handle',
              'in',
              rows.map((r) => r.input.handle),
            )
            .execute()
        ).map((r) => [r.handle, r.id]),
      );
      for (const { input } of rows) {
        const { handle } = input;
        const found = existing.get(handle);
        if (found === undefined) {
          const id = await insertProduct(trx, tenantId, input);
          touched.add(id);
          done.push({ status: 'created', id, handle });
          continue;
        }
        const current = await lockedProduct(trx, tenantId, found);
        const categoryIds = await resolveCategories(trx, tenantId, input);
        if (sameAs(current, input, categoryIds)) {
          done.push({ status: 'unchanged', id: found, handle });
          continue;
        }
        touched.add(found);
        await replaceProduct(trx, tenantId, current, input, categoryIds);
        done.push({ status: 'updated', id: found, handle });
      }
      const changed = done.filter((o) => o.status !== 'unchanged');
      if (changed.length > 0) {
        const ids = changed.map((o) => o.id);
        await deps.indexProducts(trx, tenantId, ids);
        const products = new Map((await loadProducts(trx, tenantId, ids)).map((p) => [p.id, p]));
        await deps.events.publish(
          trx,
          tenantId,
          'product-events',
          changed.map((o) => {
            const product = products.get(o.id);
            if (!product) throw new Error(`product ${o.id} vanished inside its own transaction`);
            return { type: `mercato.product.${o.status}`, subject: o.id, data: product };
          }),
          meta,
        );
      }
      return done;
    });
  } catch {
    // Written again row by row, which names each failure (and logs the unexpected ones).
    return undefined;
  } finally {
    for (const id of touched) deps.cache.invalidate(tenantId, id);
  }
}
