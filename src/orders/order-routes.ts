import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Selectable } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import { AppError, principalOf, requireStaff, storefrontTenant } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { OrdersDeps } from './deps.ts';
import { mayRead, READ_PERMISSION, readerOf } from './order-access.ts';
import { listOrders, type OrderFilters, readPage } from './order-list.ts';
import {
  IdParams,
  ListQuery,
  OrderPage,
  OrderStatusView,
  OrderView,
  STAFF_SECURITY,
  STOREFRONT_SECURITY,
  UserListQuery,
  UserParams,
} from './order-schemas.ts';
import { findOrderRow, withDetails } from './order-store.ts';
import type { OrdersTable, OrdersTrx } from './tables.ts';

const tags = ['orders'];
const notFound = (id: string) => new AppError('NOT_FOUND', `order ${id} not found`);

// Orders hold names, addresses and what was bought: no shared cache may keep an answer.
const privately = (reply: FastifyReply) => reply.header('cache-control', 'private, no-store');

// GET /orders needs a credential (401 before the query string is looked at); what it lists
// depends on who the caller is.
const credentialRequired = async (request: FastifyRequest) => {
  principalOf(request);
};

/** Reading orders: one (with its history), its status, a list, and a customer's orders for staff. */
export function orderRoutes(deps: OrdersDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    /** What `view` makes of the order, when the caller may read it (else 404, as for none). */
    const readOrder = async <T>(
      request: FastifyRequest,
      id: string,
      view: (trx: OrdersTrx, tenantId: string, row: Selectable<OrdersTable>) => Promise<T>,
    ): Promise<T> => {
      const tenantId = await storefrontTenant(request, deps.resolveTenant);
      const reader = readerOf(request);
      if (!isUuid(id)) throw notFound(id);
      const found = await withTenant(deps.db, tenantId, async (trx) => {
        const row = await findOrderRow(trx, tenantId, id.toLowerCase());
        if (!row || !mayRead(reader, row)) return undefined;
        return { value: await view(trx, tenantId, row) };
      });
      if (!found) throw notFound(id);
      return found.value;
    };

    const list = (tenantId: string, filters: OrderFilters, query: { limit?: number; cursor?: string }) => {
      const page = readPage(query);
      return withTenant(deps.db, tenantId, (trx) => listOrders(trx, tenantId, filters, page));
    };

    app.get(
      '/orders/:id',
      {
        schema: {
          tags,
          security: STOREFRONT_SECURITY,
          operationId: 'getOrder',
          summary:
            "One order with its lines and status history: staff any, a customer their own, a guest with the cart's X-Cart-Token",
          params: IdParams,
          response: { 200: OrderView },
        },
      },
      async (request, reply) => {
        const order = await readOrder(request, request.params.id, (trx, tenantId, row) =>
          withDetails(trx, tenantId, row),
        );
        privately(reply);
        return order;
      },
    );

    app.get(
      '/orders/:id/status',
      {
        schema: {
          tags,
          security: STOREFRONT_SECURITY,
          operationId: 'getOrderStatus',
          summary: 'Where the order stands (for polling), with the same access as GET /orders/{id}',
          params: IdParams,
          response: { 200: OrderStatusView },
        },
      },
      async (request, reply) => {
        const status = await readOrder(request, request.params.id, async (_trx, _tenantId, row) => {
          const number = Number(row.number);
          return {
            id: row.id,
            number,
            name: `#${number}`,
            status: row.status,
            paymentStatus: row.payment_status,
            failure:
              row.failure_reason === null
                ? null
                : { reason: row.failure_reason, message: row.failure_message ?? '' },
            updatedAt: new Date(row.updated_at).toISOString(),
          };
        });
        privately(reply);
        return status;
      },
    );

    app.get(
      '/orders',
      {
        preValidation: credentialRequired,
        schema: {
          tags,
          security: STAFF_SECURITY,
          operationId: 'listOrders',
          summary:
            'Orders newest first: a customer their own; staff all, filtered by status, customerId and creation time',
          querystring: ListQuery,
          response: { 200: OrderPage },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const { limit, cursor, ...filters } = request.query;
        const reader = readerOf(request);
        if (reader.kind === 'guest') {
          throw new AppError('FORBIDDEN', `listing orders needs a user or permission ${READ_PERMISSION}`);
        }
        if (reader.kind === 'customer') {
          if (filters.customerId !== undefined && filters.customerId.toLowerCase() !== reader.customerId) {
            throw new AppError('FORBIDDEN', 'customers list their own orders only', {
              errors: [{ in: 'query', pointer: '/customerId', message: 'is for staff only' }],
            });
          }
          filters.customerId = reader.customerId;
        }
        const page = await list(principal.tenantId, filters, { limit, cursor });
        privately(reply);
        return page;
      },
    );

    app.get(
      '/orders/user/:userId',
      {
        preValidation: requireStaff(READ_PERMISSION),
        schema: {
          tags,
          security: STAFF_SECURITY,
          operationId: 'listUserOrders',
          summary: "A customer's orders, newest first (staff)",
          params: UserParams,
          querystring: UserListQuery,
          response: { 200: OrderPage },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const { userId } = request.params;
        if (!isUuid(userId)) throw new AppError('NOT_FOUND', `user ${userId} not found`);
        const { limit, cursor, ...filters } = request.query;
        const page = await list(tenantId, { ...filters, customerId: userId }, { limit, cursor });
        privately(reply);
        return page;
      },
    );
  };
}
