import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import {
  AppError,
  eventMetaOf,
  isStaff,
  type Principal,
  principalOf,
  requireStaff,
  sendJson,
  serialize200,
  storefrontTenant,
} from '../../platform/http/index.ts';
import type { CatalogDeps } from '../deps.ts';
import { loadProduct, type Product } from './product-read.ts';
import { normaliseProduct, throwIfErrors } from './product-rules.ts';
import {
  IfMatchHeaders,
  ProductBody,
  ProductParams,
  ProductView,
  SECURITY,
  STOREFRONT_SECURITY,
} from './product-schemas.ts';
import { createProduct, deleteProduct, expectedVersion, updateProduct } from './product-service.ts';

export const WRITE_PERMISSION = 'products:write';
const READ_PERMISSION = 'products:read';

/** Staff (and API keys with products:read or products:write) see drafts and archived products. */
export const seesAllProducts = (principal: Principal | undefined): boolean =>
  isStaff(principal, WRITE_PERMISSION) || isStaff(principal, READ_PERMISSION);

const staffOnly = { preValidation: requireStaff(WRITE_PERMISSION) };
const base = { tags: ['catalog'], security: SECURITY };

/**
 * The product named by id or handle as the caller may see it: from this process's cache, a
 * shopper (anonymous or customer) gets active products only, anything else is 404 to them.
 */
export async function visibleProduct(
  deps: CatalogDeps,
  request: FastifyRequest,
  ref: string,
): Promise<Product> {
  const tenantId = await storefrontTenant(request, deps.resolveTenant);
  const product = await deps.cache.read(tenantId, ref, () =>
    withTenant(deps.db, tenantId, (trx) => loadProduct(trx, tenantId, ref)),
  );
  if (!product || (product.status !== 'active' && !seesAllProducts(request.principal)))
    throw new AppError('NOT_FOUND', `product ${ref} not found`);
  return product;
}

/** /products/{id} by id or handle, and staff writes of whole products. */
export function productRoutes(deps: CatalogDeps) {
  // The JSON of each product the cache holds; dropped with it (the cache's entries are the keys).
  const serialized = new WeakMap<Product, string>();
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/products/:id',
      {
        schema: {
          ...base,
          summary: 'A product by id or handle (shoppers: active products only; send X-Tenant when anonymous)',
          operationId: 'getProduct',
          security: STOREFRONT_SECURITY,
          params: ProductParams,
          response: { 200: ProductView },
        },
      },
      async (request, reply) => {
        const product = await visibleProduct(deps, request, request.params.id);
        // A cached product is serialized once (by the route's own schema), not on every read.
        let body = serialized.get(product);
        if (body === undefined) {
          body = serialize200(reply as FastifyReply, product);
          serialized.set(product, body);
        }
        return sendJson((reply as FastifyReply).header('etag', `"${product.version}"`), body);
      },
    );

    app.post(
      '/products',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Create a product with its variants (Idempotency-Key honoured)',
          operationId: 'createProduct',
          body: ProductBody,
          response: { 201: ProductView },
        },
      },
      async (request, reply) => {
        const { input, errors } = normaliseProduct(request.body);
        if (input.variants === undefined)
          errors.push({ in: 'body', pointer: '/variants', message: 'a product needs 1 to 100 variants' });
        throwIfErrors(errors);
        const { tenantId } = principalOf(request);
        const product = await createProduct(deps, tenantId, input, eventMetaOf(request));
        reply
          .code(201)
          .header('location', `/api/v1/products/${product.id}`)
          .header('etag', `"${product.version}"`);
        return product;
      },
    );

    app.put(
      '/products/:id',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Replace a product (absent fields take their defaults; absent variants stay as they are)',
          operationId: 'updateProduct',
          params: ProductParams,
          headers: IfMatchHeaders,
          body: ProductBody,
          response: { 200: ProductView },
        },
      },
      async (request, reply) => {
        const { input, errors } = normaliseProduct(request.body);
        throwIfErrors(errors);
        const { tenantId } = principalOf(request);
        const product = await updateProduct(deps, tenantId, request.params.id, input, {
          expectedVersion: expectedVersion(request.headers['if-match']),
          meta: eventMetaOf(request),
        });
        reply.header('etag', `"${product.version}"`);
        return product;
      },
    );

    app.delete(
      '/products/:id',
      {
        ...staffOnly,
        schema: {
          ...base,
          summary: 'Delete a product and its variants',
          operationId: 'deleteProduct',
          params: ProductParams,
          headers: IfMatchHeaders,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        await deleteProduct(deps, tenantId, request.params.id, {
          expectedVersion: expectedVersion(request.headers['if-match']),
          meta: eventMetaOf(request),
        });
        return reply.code(204).send(null);
      },
    );
  };
}
