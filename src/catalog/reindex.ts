import { sql } from 'kysely';
import { isTransientConflict, withTenant } from '../platform/db/index.ts';
import { lockCategoryWrites } from './categories/category-lock.ts';
import { indexProducts, sweepDictionary } from './search/index.ts';
import type { CatalogDb, CatalogTrx } from './tables.ts';

/** Products rebuilt per transaction by reindexProducts (one statement of the indexer's). */
export const REINDEX_BATCH = 500;
/** Tries of one transaction that PostgreSQL undid for a concurrent one (a deadlock). */
const TRIES = 5;

type Batch = { handles: string[]; rebuilt: number; busy: string[] };

/**
 * Rebuilds the search document of every product of the tenant with the current indexing code
 * (after a change to it, such as NFKC text) and answers how many were rebuilt. Products are read
 * in handle order (the tenant's unique index), `batchSize` per transaction: a large catalog
 * never holds one long transaction, and each batch locks its rows only while it runs.
 *
 * Safe beside a running server and concurrent edits: every document is rebuilt under the row
 * lock of its product (FOR SHARE: no write to the product can commit until the batch does, and
 * every write that committed before is read), and under the tenant's category write lock (a
 * rename rebuilds the breadcrumbs of its products without locking them). A product a writer holds
 * is not waited for inside the batch (SKIP LOCKED: the batch never waits while holding other
 * rows, so it cannot deadlock with an import locking products in another order); it is rebuilt
 * afterwards in a transaction of its own, once the writer is done. A product whose handle changes
 * mid-run may be passed over: its writer rebuilt its document with the current code.
 */
export async function reindexProducts(
  db: CatalogDb,
  tenantId: string,
  options: { batchSize?: number; onProgress?: (rebuilt: number) => void } = {},
): Promise<number> {
  const size = options.batchSize ?? REINDEX_BATCH;
  let after = '';
  let rebuilt = 0;
  for (;;) {
    const batch: Batch = await retrying(() =>
      withTenant(db, tenantId, (trx) => reindexBatch(trx, tenantId, after, size)),
    );
    rebuilt += batch.rebuilt;
    for (const id of batch.busy) {
      const done = await retrying(() => withTenant(db, tenantId, (trx) => reindexOne(trx, tenantId, id)));
      if (done) rebuilt += 1;
    }
    if (batch.handles.length > 0) options.onProgress?.(rebuilt);
    if (batch.handles.length < size) {
      // Every document now knows its words: the words no active product gives leave the dictionary.
      await sweepDictionary(db, tenantId);
      return rebuilt;
    }
    after = batch.handles.at(-1)!;
  }
}

/** The next `size` products after `after` (by handle): those free locked and rebuilt, the rest named. */
async function reindexBatch(trx: CatalogTrx, tenantId: string, after: string, size: number): Promise<Batch> {
  await lockCategoryWrites(trx, tenantId);
  const window = (
    await sql<{ id: string; handle: string }>`select id, handle from catalog.products
      where tenant_id = ${tenantId} and handle > ${after} order by handle limit ${size}`.execute(trx)
  ).rows;
  if (window.length === 0) return { handles: [], rebuilt: 0, busy: [] };
  const ids = window.map((r) => r.id);
  const { rebuilt, busy } = await rebuildFree(trx, tenantId, ids);
  return { handles: window.map((r) => r.handle), rebuilt, busy };
}

/**
 * Of these products, the ones no writer holds, locked FOR SHARE and their documents rebuilt; the
 * others (`busy`) are for reindexOne once their writer is done. SKIP LOCKED: the batch never waits
 * while holding other rows, so it cannot deadlock with an import locking products in file order.
 * The caller holds the tenant's category write lock (breadcrumbs read are not being renamed).
 */
export async function rebuildFree(
  trx: CatalogTrx,
  tenantId: string,
  ids: string[],
): Promise<{ rebuilt: number; busy: string[] }> {
  const locked = (
    await sql<{ id: string }>`select id from catalog.products
      where tenant_id = ${tenantId} and id = any(${ids}::uuid[]) order by id for share skip locked`.execute(
      trx,
    )
  ).rows.map((r) => r.id);
  await indexProducts(trx, tenantId, locked);
  const free = new Set(locked);
  return { rebuilt: locked.length, busy: ids.filter((id) => !free.has(id)) };
}

/**
 * One product a writer held: waits for its row lock, then rebuilds it (false when it is gone).
 * The category lock first, as a batch and a category write take it: product writers never wait
 * for it, so waiting for one under it cannot close a circle.
 */
async function reindexOne(trx: CatalogTrx, tenantId: string, id: string): Promise<boolean> {
  await lockCategoryWrites(trx, tenantId);
  const found = await sql`select id from catalog.products where tenant_id = ${tenantId} and id = ${id}
    for share`.execute(trx);
  if (found.rows.length === 0) return false; // deleted: its writer dropped the document
  await indexProducts(trx, tenantId, [id]);
  return true;
}

async function retrying<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= TRIES || !isTransientConflict(error)) throw error;
    }
  }
}
