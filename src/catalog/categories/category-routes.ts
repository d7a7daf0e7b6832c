import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import {
  AppError,
  eventMetaOf,
  principalOf,
  requireStaff,
  sendJson,
  serialize200,
  storefrontTenant,
} from '../../platform/http/index.ts';
import type { CatalogDeps } from '../deps.ts';
import { SECURITY, STOREFRONT_SECURITY } from '../products/product-schemas.ts';
import { DEFAULT_CATEGORY_PAGE, listCategoryPage, unknownParent } from './category-pages.ts';
import { findCategoryId, loadCategory } from './category-read.ts';
import {
  CategoryBody,
  CategoryListQuery,
  CategoryPageView,
  CategoryParams,
  CategoryView,
} from './category-schemas.ts';
import { createCategory, deleteCategory, updateCategory } from './category-service.ts';

const staffOnly = { preValidation: requireStaff('products:write') };
const base = { tags: ['catalog'], security: SECURITY };

/** /categories: the store's category tree; anyone may read it (X-Tenant when anonymous), staff write it. */
export function categoryRoutes(deps: CatalogDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/categories',
      {
        schema: {
          ...base,
          summary:
            "A page of the categories in tree order (parents before children), or of one category's children, each with its breadcrumb path",
          operationId: 'listCategories',
          security: STOREFRONT_SECURITY,
          querystring: CategoryListQuery,
          response: { 200: CategoryPageView },
        },
      },
      async (request, reply) => {
        const tenantId = await storefrontTenant(request, deps.resolveTenant);
        const { limit = DEFAULT_CATEGORY_PAGE, cursor, parentId } = request.query;
        // Kept per process until the tenant's catalog changes (NOTIFY), as search answers are.
        const key = `categories|${JSON.stringify([limit, cursor ?? null, parentId ?? null])}`;
        const json = await deps.answers.read(tenantId, key, async () => {
          const page = await withTenant(deps.db, tenantId, (trx) =>
            listCategoryPage(trx, tenantId, { limit, cursor, parentId }),
          );
          if (!page) throw unknownParent(parentId!);
          return serialize200(reply, page);
        });
        return sendJson(reply, json);
      },
    );

    app.get(
      '/categories/:id',
      {
        schema: {
          ...base,
          summary: 'A category by id or handle, with its breadcrumb path',
          operationId: 'getCategory',
          security: STOREFRONT_SECURITY,
          params: CategoryParams,
          response: { 200: CategoryView },
        },
      },
      async (request) => {
        const tenantId = await storefrontTenant(request, deps.resolveTenant);
        const category = await withTenant(deps.db, tenantId, async (trx) => {
          const id = await findCategoryId(trx, tenantId, request.params.id);
          return id === undefined ? undefined : loadCategory(trx, tenantId, id);
        });
        if (!category) throw new AppError('NOT_FOUND', `category ${request.params.id} not found`);
        return category;
      },
    );

    app.post(
      '/categories',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Create a category (Idempotency-Key honoured)',
          operationId: 'createCategory',
          body: CategoryBody,
          response: { 201: CategoryView },
        },
      },
      async (request, reply) => {
        const category = await createCategory(
          deps,
          principalOf(request).tenantId,
          request.body,
          eventMetaOf(request),
        );
        reply.code(201).header('location', `/api/v1/categories/${category.id}`);
        return category;
      },
    );

    app.put(
      '/categories/:id',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Replace a category: rename or move it (409 CATEGORY_CYCLE under itself)',
          operationId: 'updateCategory',
          params: CategoryParams,
          body: CategoryBody,
          response: { 200: CategoryView },
        },
      },
      async (request) =>
        updateCategory(
          deps,
          principalOf(request).tenantId,
          request.params.id,
          request.body,
          eventMetaOf(request),
        ),
    );

    app.delete(
      '/categories/:id',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Delete a category without children or products (else 409 CATEGORY_IN_USE)',
          operationId: 'deleteCategory',
          params: CategoryParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        await deleteCategory(deps, principalOf(request).tenantId, request.params.id, eventMetaOf(request));
        return reply.code(204).send(null);
      },
    );
  };
}
