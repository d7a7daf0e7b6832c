import type { Static } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import type { EventMeta } from '../../platform/events/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { isUuid, uuidv7 } from '../../platform/uuidv7.ts';
import { catalogConflict } from '../conflicts.ts';
import type { CatalogDeps } from '../deps.ts';
import { freeHandle } from '../products/product-write.ts';
import type { CatalogTrx } from '../tables.ts';
import { lockCategoryWrites } from './category-lock.ts';
import { ancestorIds, type Category, findCategoryId, loadCategory, subtreeHeight } from './category-read.ts';
import { type CategoryBody, MAX_CATEGORIES, MAX_DEPTH } from './category-schemas.ts';
import { rebuildSubtree } from './subtree-reindex.ts';

export type CategoryInput = Static<typeof CategoryBody>;

const invalid = (pointer: string, message: string) =>
  new AppError('VALIDATION_FAILED', `${pointer.slice(1)} ${message}`, {
    errors: [{ in: 'body', pointer, message }],
  });

/**
 * Runs a category write: one at a time per tenant (a transaction-scoped advisory lock), so two
 * concurrent moves cannot make a cycle between them; unique and foreign keys become
 * HANDLE_TAKEN / CATEGORY_IN_USE; products shown with categories drop from every cache by NOTIFY.
 */
async function writeCategories<T>(deps: CatalogDeps, tenantId: string, fn: (trx: CatalogTrx) => Promise<T>) {
  try {
    return await withTenant(deps.db, tenantId, async (trx) => {
      await lockCategoryWrites(trx, tenantId);
      return fn(trx);
    });
  } catch (error) {
    throw catalogConflict(error);
  } finally {
    deps.cache.onChange(`${tenantId}:*`);
  }
}

async function publishCategory(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  verb: 'created' | 'updated' | 'deleted',
  category: Category,
  meta: EventMeta | undefined,
) {
  await deps.events.publish(
    trx,
    tenantId,
    'product-events',
    [{ type: `mercato.category.${verb}`, subject: category.id, data: category }],
    meta,
  );
}

/** Checks that the parent exists, is not the category or below it, and keeps the tree at most MAX_DEPTH deep. */
async function checkParent(
  trx: CatalogTrx,
  tenantId: string,
  parentId: string,
  self?: string,
): Promise<void> {
  const chain = await ancestorIds(trx, tenantId, parentId);
  if (chain.length === 0) throw invalid('/parentId', 'is not a category of this store');
  if (self !== undefined && chain.includes(self))
    throw new AppError(
      'CATEGORY_CYCLE',
      parentId === self
        ? `category ${self} cannot be its own parent`
        : `category ${parentId} is below category ${self}: moving it there would make a cycle`,
    );
  const below = self === undefined ? 0 : await subtreeHeight(trx, tenantId, self);
  if (chain.length + 1 + below > MAX_DEPTH)
    throw invalid('/parentId', `would make the tree deeper than ${MAX_DEPTH} levels`);
}

/** The input's trimmed name; a blank name or a handle that looks like an id is rejected. */
function checkedName(input: CategoryInput): string {
  const name = input.name.trim();
  if (name === '') throw invalid('/name', 'is blank');
  if (input.handle !== undefined && isUuid(input.handle))
    throw invalid('/handle', 'must not look like an id');
  return name;
}

export async function createCategory(
  deps: CatalogDeps,
  tenantId: string,
  input: CategoryInput,
  meta?: EventMeta,
): Promise<Category> {
  const name = checkedName(input);
  return writeCategories(deps, tenantId, async (trx) => {
    const { count } = await trx
      .selectFrom('catalog.categories')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('tenant_id', '=', tenantId)
      .executeTakeFirstOrThrow();
    if (Number(count) >= MAX_CATEGORIES)
      throw new AppError('CONFLICT', `a store has at most ${MAX_CATEGORIES} categories`);
    const parentId = input.parentId?.toLowerCase() ?? null;
    if (parentId !== null) await checkParent(trx, tenantId, parentId);
    const id = uuidv7();
    const now = new Date();
    await trx
      .insertInto('catalog.categories')
      .values({
        id,
        tenant_id: tenantId,
        parent_id: parentId,
        name,
        handle: input.handle ?? (await freeHandle(trx, 'catalog.categories', tenantId, name, 'category')),
        description: input.description ?? '',
        position: input.position ?? 0,
        created_at: now,
        updated_at: now,
      })
      .execute();
    const category = (await loadCategory(trx, tenantId, id))!;
    await publishCategory(deps, trx, tenantId, 'created', category, meta);
    return category;
  });
}

async function existing(trx: CatalogTrx, tenantId: string, ref: string): Promise<Category> {
  const id = await findCategoryId(trx, tenantId, ref);
  const category = id === undefined ? undefined : await loadCategory(trx, tenantId, id);
  if (!category) throw new AppError('NOT_FOUND', `category ${ref} not found`);
  return category;
}

/**
 * Replaces a category (absent handle: kept; absent parentId: a root). Its products' search
 * documents are rebuilt (rebuildSubtree: in this transaction, or in batches after it).
 */
export async function updateCategory(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  input: CategoryInput,
  meta?: EventMeta,
): Promise<Category> {
  const name = checkedName(input);
  return writeCategories(deps, tenantId, async (trx) => {
    const current = await existing(trx, tenantId, ref);
    const parentId = input.parentId?.toLowerCase() ?? null;
    if (parentId !== null && parentId !== current.parentId)
      await checkParent(trx, tenantId, parentId, current.id);
    if (parentId === current.id)
      throw new AppError('CATEGORY_CYCLE', `category ${current.id} cannot be its own parent`);
    const handle = input.handle ?? current.handle;
    // A new name, handle or place is shown in its products' documents: their rebuild, which ends
    // any rebuild an earlier write of it started (its token is no longer the category's).
    const moved = name !== current.name || handle !== current.handle || parentId !== current.parentId;
    const reindexToken = moved ? uuidv7() : undefined;
    await trx
      .updateTable('catalog.categories')
      .set({
        parent_id: parentId,
        name,
        handle,
        description: input.description ?? '',
        position: input.position ?? 0,
        updated_at: new Date(),
        ...(reindexToken ? { reindex_token: reindexToken } : {}),
      })
      .where('id', '=', current.id)
      .execute();
    const category = (await loadCategory(trx, tenantId, current.id))!;
    if (reindexToken) await rebuildSubtree(deps, trx, tenantId, current.id, reindexToken, meta);
    await publishCategory(deps, trx, tenantId, 'updated', category, meta);
    return category;
  });
}

/** Deletes a category that has no children and no products (else 409 CATEGORY_IN_USE). */
export async function deleteCategory(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  meta?: EventMeta,
): Promise<void> {
  await writeCategories(deps, tenantId, async (trx) => {
    const current = await existing(trx, tenantId, ref);
    const child = await trx
      .selectFrom('catalog.categories')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('parent_id', '=', current.id)
      .limit(1)
      .executeTakeFirst();
    const product = await trx
      .selectFrom('catalog.product_categories')
      .select('product_id')
      .where('tenant_id', '=', tenantId)
      .where('category_id', '=', current.id)
      .limit(1)
      .executeTakeFirst();
    if (child || product)
      throw new AppError(
        'CATEGORY_IN_USE',
        `category ${current.id} still has ${child ? 'child categories' : 'products'}: move or remove them first`,
      );
    await trx.deleteFrom('catalog.categories').where('id', '=', current.id).execute();
    await publishCategory(deps, trx, tenantId, 'deleted', current, meta);
  });
}
