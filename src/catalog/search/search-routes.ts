import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../platform/db/index.ts';
import { withTenant } from '../../platform/db/index.ts';
import {
  isStaff,
  sendJson,
  serialize200,
  storefrontTenant,
  type TenantResolver,
} from '../../platform/http/index.ts';
import { queryWords } from './query-text.ts';
import { relatedHits } from './related.ts';
import { type SearchCache, searchKey } from './search-cache.ts';
import type { ProductStatus } from './search-query.ts';
import {
  ListQuery,
  ProductPage,
  RelatedList,
  RelatedParams,
  RelatedQuery,
  SECURITY,
  Suggestions,
  SuggestQuery,
} from './search-schemas.ts';
import { item, PREFER_INDEXES, searchProducts } from './search-service.ts';
import { suggest } from './suggest.ts';

export type SearchDeps = { db: Database; resolveTenant: TenantResolver; cache: SearchCache };

const base = { tags: ['catalog'], security: SECURITY };

/** Staff (users, or API keys with products:read or products:write) see every status. */
const seesAll = (request: FastifyRequest) =>
  isStaff(request.principal, 'products:write') || isStaff(request.principal, 'products:read');

/** GET /products (list and search), /products/suggest and /products/{id}/related. */
export function searchRoutes(deps: SearchDeps) {
  const db = deps.db.kysely as Kysely<unknown>;
  /** The answer's JSON from the cache, or load()'s answer serialized by the route and cached. */
  const cached = async (reply: FastifyReply, tenantId: string, key: string, load: () => Promise<unknown>) =>
    sendJson(reply, await deps.cache.read(tenantId, key, async () => serialize200(reply, await load())));
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/products',
      {
        schema: {
          ...base,
          summary:
            'List or search products: text (ranked, typo-tolerant), filters, sorts, cursor pages, facets (shoppers: active products; send X-Tenant when anonymous)',
          operationId: 'listProducts',
          querystring: ListQuery,
          response: { 200: ProductPage },
        },
      },
      async (request, reply) => {
        const tenantId = await storefrontTenant(request, deps.resolveTenant);
        const staff = seesAll(request);
        return cached(reply, tenantId, searchKey('list', staff, request.query), () =>
          searchProducts(db, tenantId, request.query, staff),
        );
      },
    );

    app.get(
      '/products/suggest',
      {
        schema: {
          ...base,
          summary: 'Autocomplete: the query with its last word completed, and products whose title matches',
          operationId: 'suggestProducts',
          querystring: SuggestQuery,
          response: { 200: Suggestions },
        },
      },
      async (request, reply) => {
        const tenantId = await storefrontTenant(request, deps.resolveTenant);
        const words = queryWords(request.query.q);
        if (words.length === 0) return { terms: [], products: [] };
        const staff = seesAll(request);
        const statuses: ProductStatus[] = staff ? ['draft', 'active', 'archived'] : ['active'];
        return cached(reply, tenantId, searchKey('suggest', staff, { words }), () =>
          withTenant(db, tenantId, (trx) => suggest(trx, tenantId, words, statuses), PREFER_INDEXES),
        );
      },
    );

    app.get(
      '/products/:id/related',
      {
        schema: {
          ...base,
          summary: 'Active products sharing categories and tags with this one (id or handle), best first',
          operationId: 'relatedProducts',
          params: RelatedParams,
          querystring: RelatedQuery,
          response: { 200: RelatedList },
        },
      },
      async (request, reply) => {
        const tenantId = await storefrontTenant(request, deps.resolveTenant);
        const staff = seesAll(request);
        const statuses: ProductStatus[] = staff ? ['draft', 'active', 'archived'] : ['active'];
        const key = searchKey('related', staff, { id: request.params.id, limit: request.query.limit ?? 8 });
        return cached(reply, tenantId, key, async () => {
          const hits = await withTenant(
            db,
            tenantId,
            (trx) => relatedHits(trx, tenantId, request.params.id, statuses, request.query.limit ?? 8),
            PREFER_INDEXES,
          );
          return { items: hits.map(item) };
        });
      },
    );
  };
}
