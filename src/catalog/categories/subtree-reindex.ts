import { sql } from 'kysely';
import type { EventBus, EventMeta, ReceivedEvent, Subscriber } from '../../platform/events/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { CatalogDeps } from '../deps.ts';
import { REINDEX_BATCH, rebuildFree } from '../reindex.ts';
import type { CatalogTrx } from '../tables.ts';
import { lockCategoryWrites } from './category-lock.ts';
import { subtreeIds } from './category-read.ts';

/**
 * Mercato's own message (internal: no tenant webhook takes it): the search documents of a renamed
 * or moved category's products still to rebuild, from the product after `after` (by id), or the
 * one product `productId` a writer held when its batch ran (`attempt`: how often it was found held).
 * `token`: the rebuild it belongs to (the category's reindex_token, migration 0061); absent in
 * events written before it.
 */
export const SUBTREE_REINDEX_TYPE = 'mercato.category.reindex';

/** Products a category write rebuilds in its own transaction; past this, batches after the commit. */
export const INLINE_REINDEX_LIMIT = REINDEX_BATCH;

type Step = { token?: string } & (
  | { categoryId: string; after: string | null }
  | { categoryId: string; productId: string; attempt: number }
);

/** How long a product a writer holds waits before it is looked at again (doubling, at most a minute). */
export const heldRetryMs = (attempt: number) => Math.min(1000 * 2 ** attempt, 60_000);

const stepEvent = (step: Step) => ({
  type: SUBTREE_REINDEX_TYPE,
  subject: step.categoryId,
  data: step,
  internal: true,
  delayMs: 'productId' in step ? heldRetryMs(step.attempt) : undefined,
});

/** Up to `limit` products of the category's subtree after `after`, in id order. */
async function subtreeProducts(
  trx: CatalogTrx,
  tenantId: string,
  categoryId: string,
  after: string | null,
  limit: number,
): Promise<string[]> {
  const categories = await subtreeIds(trx, tenantId, categoryId);
  if (categories.length === 0) return [];
  const { rows } = await sql<{ product_id: string }>`
    select distinct product_id from catalog.product_categories
    where tenant_id = ${tenantId} and category_id = any(${categories}::uuid[])
      and product_id > ${after ?? '00000000-0000-0000-0000-000000000000'}::uuid
    order by product_id limit ${limit}`.execute(trx);
  return rows.map((r) => r.product_id);
}

/**
 * In a category write's transaction (its lock held), after a rename or move that set the
 * category's reindex_token to `token`: the search documents of the products in its subtree name
 * its new breadcrumb. Up to INLINE_REINDEX_LIMIT products are
 * rebuilt right there, so search shows the change when it commits. A larger subtree is rebuilt
 * after the commit, REINDEX_BATCH products per transaction, each batch an internal event whose
 * handler writes the next (subtreeReindexSubscriber): one category write never holds a
 * transaction, the category lock and the tenant's stock-flags lock for a whole catalog (seconds
 * per 10,000 products, which on PGlite held up every request of the process, and meanwhile every
 * stock event of the tenant), and a crash resumes where the last batch committed.
 */
export async function rebuildSubtree(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  categoryId: string,
  token: string,
  meta: EventMeta | undefined,
): Promise<void> {
  const products = await subtreeProducts(trx, tenantId, categoryId, null, INLINE_REINDEX_LIMIT + 1);
  if (products.length <= INLINE_REINDEX_LIMIT) {
    if (products.length > 0) await deps.indexProducts(trx, tenantId, products);
    return;
  }
  const first = stepEvent({ categoryId, after: null, token });
  await deps.events.publish(trx, tenantId, 'product-events', [first], meta);
}

/** The step an event names, or undefined for anything else (nothing is done for it). */
function stepOf(data: unknown): Step | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { categoryId, after, productId, attempt, token } = data as Record<string, unknown>;
  if (!isUuid(categoryId)) return undefined;
  const of = {
    categoryId: categoryId.toLowerCase(),
    ...(isUuid(token) ? { token: token.toLowerCase() } : {}),
  };
  if (isUuid(productId)) {
    const tries = Number.isSafeInteger(attempt) && (attempt as number) >= 0 ? (attempt as number) : 0;
    return { ...of, productId: productId.toLowerCase(), attempt: Math.min(tries, 64) };
  }
  if (after === null || isUuid(after)) return { ...of, after: after?.toLowerCase() ?? null };
  return undefined;
}

/** Whether a later rename or move of the category (or its deletion) has taken the rebuild over. */
async function superseded(trx: CatalogTrx, tenantId: string, step: Step): Promise<boolean> {
  if (step.token === undefined) return false;
  const { rows } = await sql<{ reindex_token: string | null }>`select reindex_token from catalog.categories
    where tenant_id = ${tenantId} and id = ${step.categoryId}`.execute(trx);
  return rows[0]?.reindex_token !== step.token;
}

/**
 * Rebuilds a subtree batch by batch (rebuildSubtree): each event, in the transaction that records
 * it in the inbox (exactly once), takes the category lock (as the reindex does), rebuilds the
 * next REINDEX_BATCH products that no writer holds (reindex.ts rebuildFree) and writes, with
 * them, the event of the next batch and, for each product a writer held, a delayed one that
 * looks at it again (and again, later each time, while it is held; a product deleted meanwhile
 * lost its document with it). Nothing waits for a writer inside a delivery: the batches go on,
 * and the category lock is never held while waiting. The subtree is read afresh by each batch,
 * so a batch after a second rename or move writes the newest breadcrumbs. That write starts a
 * rebuild of its own (a new token), so the earlier one ends at its next event, having sent
 * nothing: n renames in a row cost one rebuild of the subtree, not n.
 */
export function subtreeReindexSubscriber(events: EventBus): Subscriber {
  return {
    name: 'catalog.subtree-reindex',
    topic: 'product-events',
    types: [SUBTREE_REINDEX_TYPE],
    async handle(anyTrx, event: ReceivedEvent) {
      const trx = anyTrx as CatalogTrx;
      const step = stepOf(event.data);
      if (!step) return;
      const tenantId = event.tenantid;
      await lockCategoryWrites(trx, tenantId);
      if (await superseded(trx, tenantId, step)) return;
      const next: Step[] = [];
      const token = step.token === undefined ? {} : { token: step.token };
      if ('productId' in step) {
        const { busy } = await rebuildFree(trx, tenantId, [step.productId]);
        if (busy.length > 0 && (await exists(trx, tenantId, step.productId)))
          next.push({ ...step, attempt: step.attempt + 1 });
      } else {
        const batch = await subtreeProducts(trx, tenantId, step.categoryId, step.after, REINDEX_BATCH);
        const { busy } = await rebuildFree(trx, tenantId, batch);
        for (const productId of busy)
          next.push({ categoryId: step.categoryId, productId, attempt: 0, ...token });
        if (batch.length === REINDEX_BATCH)
          next.push({ categoryId: step.categoryId, after: batch.at(-1)!, ...token });
      }
      if (next.length > 0)
        await events.publish(trx, tenantId, 'product-events', next.map(stepEvent), {
          correlationId: event.correlationid,
          causationId: event.id,
        });
    },
  };
}

async function exists(trx: CatalogTrx, tenantId: string, productId: string): Promise<boolean> {
  const { rows } = await sql`select 1 from catalog.products
    where tenant_id = ${tenantId} and id = ${productId}`.execute(trx);
  return rows.length > 0;
}
