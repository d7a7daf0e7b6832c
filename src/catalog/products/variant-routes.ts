import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { eventMetaOf, principalOf, requireStaff } from '../../platform/http/index.ts';
import type { CatalogDeps } from '../deps.ts';
import { visibleProduct, WRITE_PERMISSION } from './product-routes.ts';
import { normaliseVariant, throwIfErrors } from './product-rules.ts';
import {
  IfMatchHeaders,
  NewVariantBody,
  ProductParams,
  SECURITY,
  STOREFRONT_SECURITY,
  VariantParams,
  VariantView,
} from './product-schemas.ts';
import { expectedVersion } from './product-service.ts';
import { addVariant, removeVariant, updateVariant } from './variant-service.ts';

const staffOnly = { preValidation: requireStaff(WRITE_PERMISSION) };
const base = { tags: ['catalog'], security: SECURITY };

/** /products/{id}/variants: a product's variants (If-Match names the product's version). */
export function variantRoutes(deps: CatalogDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/products/:id/variants',
      {
        schema: {
          ...base,
          summary: "A product's variants, in order (shoppers: of active products only)",
          operationId: 'listVariants',
          security: STOREFRONT_SECURITY,
          params: ProductParams,
          response: { 200: Type.Object({ items: Type.Array(VariantView) }) },
        },
      },
      async (request) => ({ items: (await visibleProduct(deps, request, request.params.id)).variants }),
    );

    app.post(
      '/products/:id/variants',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Add a variant (409 VARIANT_LIMIT past 100; Idempotency-Key honoured)',
          operationId: 'createVariant',
          params: ProductParams,
          headers: IfMatchHeaders,
          body: NewVariantBody,
          response: { 201: VariantView },
        },
      },
      async (request, reply) => {
        const errors: Parameters<typeof throwIfErrors>[0] = [];
        const input = normaliseVariant(request.body, '', errors);
        throwIfErrors(errors);
        const variant = await addVariant(deps, principalOf(request).tenantId, request.params.id, input, {
          expectedVersion: expectedVersion(request.headers['if-match']),
          meta: eventMetaOf(request),
        });
        reply.code(201).header('location', `/api/v1/products/${variant.productId}/variants/${variant.id}`);
        return variant;
      },
    );

    app.put(
      '/products/:id/variants/:variantId',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Replace a variant (absent fields take their defaults)',
          operationId: 'updateVariant',
          params: VariantParams,
          headers: IfMatchHeaders,
          body: NewVariantBody,
          response: { 200: VariantView },
        },
      },
      async (request) => {
        const errors: Parameters<typeof throwIfErrors>[0] = [];
        const input = normaliseVariant(request.body, '', errors);
        throwIfErrors(errors);
        const { id, variantId } = request.params;
        return updateVariant(deps, principalOf(request).tenantId, id, variantId, input, {
          expectedVersion: expectedVersion(request.headers['if-match']),
          meta: eventMetaOf(request),
        });
      },
    );

    app.delete(
      '/products/:id/variants/:variantId',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Delete a variant (409 VARIANT_LIMIT for the last one)',
          operationId: 'deleteVariant',
          params: VariantParams,
          headers: IfMatchHeaders,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { id, variantId } = request.params;
        await removeVariant(deps, principalOf(request).tenantId, id, variantId, {
          expectedVersion: expectedVersion(request.headers['if-match']),
          meta: eventMetaOf(request),
        });
        return reply.code(204).send(null);
      },
    );
  };
}
