import { type Selectable, sql } from 'kysely';
import { isoTime as iso } from '../../platform/db/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { CategoryRef } from '../products/product-read.ts';
import type { CatalogTrx, CategoriesTable } from '../tables.ts';

/** A category as the API answers it, with its breadcrumb path (root first, itself last). */
export type Category = {
  id: string;
  parentId: string | null;
  name: string;
  handle: string;
  description: string;
  position: number;
  depth: number;
  path: CategoryRef[];
  createdAt: string;
  updatedAt: string;
};

export type Row = Selectable<CategoriesTable>;

export const ref = (row: Pick<Row, 'id' | 'name' | 'handle'>): CategoryRef => ({
  id: row.id,
  name: row.name,
  handle: row.handle,
});

export function toCategory(row: Row, path: CategoryRef[]): Category {
  return {
    id: row.id,
    parentId: row.parent_id,
    name: row.name,
    handle: row.handle,
    description: row.description,
    position: row.position,
    depth: path.length - 1,
    path,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** The category and its ancestors, itself first (at most 64 levels are followed). */
async function ancestry(trx: CatalogTrx, tenantId: string, id: string): Promise<Row[]> {
  const { rows } = await sql<Row & { depth: number }>`
    with recursive up as (
      select c.*, 0 as depth from catalog.categories c where c.tenant_id = ${tenantId} and c.id = ${id}
      union all
      select c.*, up.depth + 1 from catalog.categories c join up on c.id = up.parent_id
      where c.tenant_id = ${tenantId} and up.depth < 64
    )
    select * from up order by depth`.execute(trx);
  return rows;
}

/** The ids of a category's ancestors, nearest first (for cycle checks). */
export async function ancestorIds(trx: CatalogTrx, tenantId: string, id: string): Promise<string[]> {
  return (await ancestry(trx, tenantId, id)).map((r) => r.id);
}

/** The id of the category named by id or handle, or undefined. */
export async function findCategoryId(
  trx: CatalogTrx,
  tenantId: string,
  idOrHandle: string,
): Promise<string | undefined> {
  const uuid = isUuid(idOrHandle);
  const row = await trx
    .selectFrom('catalog.categories')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where(uuid ? 'id' : 'handle', '=', uuid ? idOrHandle.toLowerCase() : idOrHandle)
    .executeTakeFirst();
  return row?.id;
}

/** One category with its path, or undefined. */
export async function loadCategory(
  trx: CatalogTrx,
  tenantId: string,
  id: string,
): Promise<Category | undefined> {
  const rows = await ancestry(trx, tenantId, id);
  if (rows.length === 0) return undefined;
  return toCategory(rows[0]!, rows.map(ref).reverse());
}

/** The ids of a category and all its descendants. */
export async function subtreeIds(trx: CatalogTrx, tenantId: string, id: string): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    with recursive down as (
      select c.id, 0 as depth from catalog.categories c where c.tenant_id = ${tenantId} and c.id = ${id}
      union all
      select c.id, down.depth + 1 from catalog.categories c join down on c.parent_id = down.id
      where c.tenant_id = ${tenantId} and down.depth < 64
    )
    select id from down`.execute(trx);
  return rows.map((r) => r.id);
}

/** How many levels a category's subtree spans below it (0 for a leaf). */
export async function subtreeHeight(trx: CatalogTrx, tenantId: string, id: string): Promise<number> {
  const { rows } = await sql<{ height: number }>`
    with recursive down as (
      select c.id, 0 as depth from catalog.categories c where c.tenant_id = ${tenantId} and c.id = ${id}
      union all
      select c.id, down.depth + 1 from catalog.categories c join down on c.parent_id = down.id
      where c.tenant_id = ${tenantId} and down.depth < 64
    )
    select coalesce(max(depth), 0)::int as height from down`.execute(trx);
  return rows[0]?.height ?? 0;
}
