import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import { AppError, eventMetaOf, isStaff, requireStaff, storefrontTenant } from '../platform/http/index.ts';
import { actorOf, type InventoryDeps, readPage, toPage } from './deps.ts';
import { publish } from './inventory-events.ts';
import {
  availabilityOf,
  changeStock,
  createItem,
  getItem,
  type ItemChange,
  listItems,
  updateItemSettings,
} from './item-store.ts';
import { listLedger } from './ledger-store.ts';
import {
  IdParams,
  ItemListQuery,
  ItemSettingsBody,
  ItemView,
  LedgerView,
  NewItemBody,
  OPTIONAL_SECURITY,
  PageOf,
  PageQuery,
  ProductAvailabilityView,
  ProductParams,
  SECURITY,
  StockBody,
} from './schemas.ts';
import type { InventoryTrx } from './tables.ts';

const base = { tags: ['inventory'], security: SECURITY };
const write = requireStaff('inventory:write');
const read = requireStaff('inventory:read');

/** Stock items: create, read, list, set or adjust, ledger; and availability per product for shoppers. */
export function itemRoutes(deps: InventoryDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    /** Makes a change to items in the tenant's transaction and publishes its events in it; answers the item. */
    const applyChange = (
      request: FastifyRequest,
      tenantId: string,
      change: (trx: InventoryTrx) => Promise<ItemChange>,
    ) =>
      withTenant(deps.db, tenantId, async (trx) => {
        const { item, events } = await change(trx);
        await publish(deps.events, trx, tenantId, events, eventMetaOf(request));
        return item;
      });

    app.post(
      '/inventory',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Create stock of a variant at a location (the default one unless named)',
          body: NewItemBody,
          response: { 201: ItemView },
        },
      },
      async (request, reply) => {
        const { tenantId, actor } = actorOf(request);
        const item = await applyChange(request, tenantId, (trx) =>
          createItem(trx, tenantId, request.body, actor),
        );
        reply.code(201).header('location', `/api/v1/inventory/${item.id}`);
        return item;
      },
    );

    app.get(
      '/inventory',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: 'List stock items by id, filtered by variant, product, SKU, location or low stock',
          querystring: ItemListQuery,
          response: { 200: PageOf(ItemView) },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        const page = readPage(request.query);
        const rows = await withTenant(deps.db, tenantId, (trx) => listItems(trx, request.query, page));
        return toPage(rows, page.limit);
      },
    );

    app.get(
      '/inventory/low-stock',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: 'Items whose available stock is at or below their low-stock threshold',
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: PageOf(ItemView) },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        const page = readPage(request.query);
        const rows = await withTenant(deps.db, tenantId, (trx) => listItems(trx, { lowStock: true }, page));
        return toPage(rows, page.limit);
      },
    );

    app.get(
      '/inventory/:id',
      {
        preValidation: read,
        schema: { ...base, summary: 'One stock item', params: IdParams, response: { 200: ItemView } },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        return withTenant(deps.db, tenantId, (trx) => getItem(trx, request.params.id));
      },
    );

    app.put(
      '/inventory/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: "Change an item's low-stock threshold or whether it allows backorders",
          params: IdParams,
          body: ItemSettingsBody,
          response: { 200: ItemView },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        return applyChange(request, tenantId, (trx) =>
          updateItemSettings(trx, request.params.id, request.body),
        );
      },
    );

    app.put(
      '/inventory/:id/stock',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Set or adjust on hand, with a reason (a receive, adjust or return in the ledger)',
          params: IdParams,
          body: StockBody,
          response: { 200: ItemView },
        },
      },
      async (request) => {
        const { set, adjust, ...rest } = request.body;
        if ((set === undefined) === (adjust === undefined)) {
          const both = set !== undefined;
          const message = both ? 'cannot be given together with set' : 'give one of set and adjust';
          throw new AppError('VALIDATION_FAILED', `give exactly one of set and adjust`, {
            errors: [{ in: 'body', pointer: both ? '/adjust' : '/set', message }],
          });
        }
        const { tenantId, actor } = actorOf(request);
        const change = set !== undefined ? { set, ...rest } : { adjust: adjust!, ...rest };
        return applyChange(request, tenantId, (trx) =>
          changeStock(trx, tenantId, request.params.id, change, actor),
        );
      },
    );

    app.get(
      '/inventory/:id/ledger',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: "The item's movements, oldest first",
          params: IdParams,
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: PageOf(LedgerView) },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        const page = readPage(request.query);
        const rows = await withTenant(deps.db, tenantId, async (trx) => {
          await getItem(trx, request.params.id);
          return listLedger(trx, request.params.id, page);
        });
        return toPage(rows, page.limit);
      },
    );

    app.get(
      '/inventory/products/:productId',
      {
        schema: {
          tags: ['inventory'],
          security: OPTIONAL_SECURITY,
          summary:
            "A product's availability per variant and in total (shoppers name the store with X-Tenant)",
          params: ProductParams,
          response: { 200: ProductAvailabilityView },
        },
      },
      async (request) => {
        const tenantId = await storefrontTenant(request, deps.resolveTenant);
        const { productId } = request.params;
        // A draft, archived or deleted product's stock is the store's: a shopper gets the 404 the
        // catalog gives them for the product, as if it had none.
        const hidden =
          deps.productStatus !== undefined &&
          !isStaff(request.principal, 'inventory:read') &&
          (await deps.productStatus(tenantId, productId)) !== 'active';
        const map = hidden
          ? new Map()
          : await withTenant(deps.db, tenantId, (trx) => availabilityOf(trx, { productId }));
        if (map.size === 0) throw new AppError('NOT_FOUND', `no stock of product ${productId}`);
        const variants = [...map.values()].map((v) => ({
          variantId: v.variantId,
          available: Math.max(0, v.available),
          inStock: v.available > 0 || v.allowBackorder,
          allowBackorder: v.allowBackorder,
        }));
        return {
          productId,
          available: variants.reduce((sum, v) => sum + v.available, 0),
          inStock: variants.some((v) => v.inStock),
          variants,
        };
      },
    );
  };
}
