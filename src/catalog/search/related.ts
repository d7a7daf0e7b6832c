import { sql } from 'kysely';
import { AppError } from '../../platform/http/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { Hit, ProductStatus, Trx } from './search-query.ts';

/** Products sharing a category or tag that are scored (the first ones the indexes find). */
const CANDIDATES = 500;

type Source = { product_id: string; category_ids: string[]; tags: string[]; direct: string[] };

/**
 * "You may also like" (003 Task 11's basic recommendations): products sharing the product's
 * categories and tags, scored 3 per shared category of its own, 1 per shared ancestor category
 * and 2 per shared tag; in-stock first among equals, then newest. ref is an id or a handle; a
 * product the caller may not see is 404.
 */
export async function relatedHits(
  trx: Trx,
  tenantId: string,
  ref: string,
  statuses: ProductStatus[],
  limit: number,
): Promise<Hit[]> {
  const byId = isUuid(ref);
  const source = (
    await sql<Source>`select d.product_id, d.category_ids, d.tags,
        coalesce(array(select (c ->> 'id') from jsonb_array_elements(d.summary -> 'categories') c), '{}') as direct
      from catalog.tenant_search_documents d
      where d.tenant_id = ${tenantId} and d.status = any(${statuses}::text[])
        and ${byId ? sql`d.product_id = ${ref.toLowerCase()}::uuid` : sql`d.handle = ${ref}`}`.execute(trx)
  ).rows[0];
  if (!source) throw new AppError('NOT_FOUND', `product ${ref} not found`);
  const direct = source.direct;
  const ancestors = source.category_ids.filter((id) => !direct.includes(id));
  return (
    await sql<Hit>`select c.product_id, c.summary, c.in_stock, c.score as key from (
        select d.product_id, d.summary, d.in_stock, d.created_at,
          3 * cardinality(array(select unnest(d.category_ids) intersect select unnest(${direct}::uuid[])))
          + cardinality(array(select unnest(d.category_ids) intersect select unnest(${ancestors}::uuid[])))
          + 2 * cardinality(array(select unnest(d.tags) intersect select unnest(${source.tags}::text[]))) as score
        from catalog.tenant_search_documents d
        where d.tenant_id = ${tenantId} and d.status = 'active' and d.product_id <> ${source.product_id}
          and (d.category_ids && ${direct}::uuid[] or d.tags && ${source.tags}::text[])
        limit ${CANDIDATES}
      ) c
      order by c.score desc, c.in_stock desc, c.created_at desc, c.product_id desc
      limit ${limit}`.execute(trx)
  ).rows;
}
