import { sql } from 'kysely';
import { AppError, cursorId, cursorText, encodeCursor, invalidCursor } from '../../platform/http/index.ts';
import type { CategoryRef } from '../products/product-read.ts';
import type { CatalogTrx } from '../tables.ts';
import { type Category, type Row, ref, toCategory } from './category-read.ts';

/** GET /categories answers this many categories unless asked for fewer or more (README "Categories"). */
export const DEFAULT_CATEGORY_PAGE = 100;
/** The most one page may hold: about 2 MB of JSON at the largest names, paths and descriptions. */
export const MAX_CATEGORY_PAGE = 200;

export type CategoryPage = { items: Category[]; nextCursor: string | null };

/** What ordering and breadcrumbs need of a category (no description: a few hundred bytes each). */
type Node = Pick<Row, 'id' | 'parent_id' | 'name' | 'handle' | 'position'>;

const bySiblingOrder = (a: Node, b: Node) =>
  a.position - b.position || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1);

/** The tenant's categories in tree order (each parent before its children, siblings by position then name). */
async function outline(
  trx: CatalogTrx,
  tenantId: string,
): Promise<{ order: Node[]; byId: Map<string, Node> }> {
  const rows = await trx
    .selectFrom('catalog.categories')
    .select(['id', 'parent_id', 'name', 'handle', 'position'])
    .where('tenant_id', '=', tenantId)
    .execute();
  const children = new Map<string | null, Node[]>();
  for (const row of rows) {
    const list = children.get(row.parent_id) ?? [];
    list.push(row);
    children.set(row.parent_id, list);
  }
  const order: Node[] = [];
  const walk = (parent: string | null) => {
    for (const row of (children.get(parent) ?? []).sort(bySiblingOrder)) {
      order.push(row);
      walk(row.id);
    }
  };
  walk(null);
  return { order, byId: new Map(rows.map((r) => [r.id, r])) };
}

/** The cursor's text is `<index of the last item>:<its id>`. */
function readCursor(cursor: string): { index: number; id: string } {
  const [index, id, ...rest] = cursorText(cursor).split(':');
  if (rest.length > 0 || !/^\d{1,6}$/.test(index ?? '')) throw invalidCursor('not a category cursor');
  return { index: Number(index), id: cursorId(id) };
}

/**
 * One page of the tenant's categories in tree order, or of parentId's children in sibling order
 * (undefined: no such parent). A page resumes after its cursor's category; if that category is
 * gone meanwhile, at the place it held. The whole tree is never read with its descriptions:
 * only the outline (ids, names, handles, positions) and the page's own rows.
 */
export async function listCategoryPage(
  trx: CatalogTrx,
  tenantId: string,
  options: { limit: number; cursor?: string; parentId?: string },
): Promise<CategoryPage | undefined> {
  const after = options.cursor === undefined ? undefined : readCursor(options.cursor);
  const { order, byId } = await outline(trx, tenantId);
  const parentId = options.parentId?.toLowerCase();
  if (parentId !== undefined && !byId.has(parentId)) return undefined;
  const list = parentId === undefined ? order : order.filter((c) => c.parent_id === parentId);
  let start = 0;
  if (after) {
    const at = list.findIndex((c) => c.id === after.id);
    start = at >= 0 ? at + 1 : after.index + 1;
  }
  const chosen = list.slice(start, start + options.limit);
  const rows =
    chosen.length === 0
      ? []
      : (
          await sql<Row>`select * from catalog.categories
            where tenant_id = ${tenantId} and id = any(${chosen.map((c) => c.id)}::uuid[])`.execute(trx)
        ).rows;
  const full = new Map(rows.map((r) => [r.id, r]));
  const items: Category[] = [];
  for (const node of chosen) {
    const row = full.get(node.id);
    if (row) items.push(toCategory(row, breadcrumb(byId, node)));
  }
  const last = start + chosen.length - 1;
  const more = start + chosen.length < list.length && chosen.length > 0;
  return { items, nextCursor: more ? encodeCursor(`${last}:${chosen.at(-1)!.id}`) : null };
}

/** The path from the root to node (at most 64 levels followed). */
function breadcrumb(byId: Map<string, Node>, node: Node): CategoryRef[] {
  const path: CategoryRef[] = [];
  for (let at: Node | undefined = node; at && path.length < 64; ) {
    path.push(ref(at));
    at = at.parent_id === null ? undefined : byId.get(at.parent_id);
  }
  return path.reverse();
}

/** 404 for a parentId the tenant does not have. */
export const unknownParent = (parentId: string) =>
  new AppError('NOT_FOUND', `category ${parentId} not found`, {
    errors: [{ in: 'query', pointer: '/parentId', message: 'is not a category of this store' }],
  });
