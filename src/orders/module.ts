import type { FastifyInstance } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import type { OrdersDeps, OrdersModuleDeps } from './deps.ts';
import { orderNumbers } from './order-numbers.ts';
import { orderRoutes } from './order-routes.ts';
import type { Order } from './order-view.ts';
import { type OrdersApi, ordersApi } from './orders-api.ts';
import type { OrdersDb } from './tables.ts';

export type OrdersModule = MercatoModule &
  OrdersApi & {
    /** One order in a transaction of its own (for callers outside one, e.g. payments' findOrder). */
    getOrder(tenantId: string, orderId: string): Promise<Order | undefined>;
  };

/** Order records, their state machine, history and events, and the routes that read them. */
export async function createOrders(ctx: AppContext, moduleDeps: OrdersModuleDeps): Promise<OrdersModule> {
  const deps: OrdersDeps = { ...moduleDeps, db: ctx.db.kysely as OrdersDb };
  const api = ordersApi(deps.events, orderNumbers(deps.db));
  return {
    name: 'orders',
    ...api,
    getOrder: (tenantId, orderId) => withTenant(deps.db, tenantId, (trx) => api.get(trx, tenantId, orderId)),
    async routes(app: FastifyInstance) {
      await app.register(orderRoutes(deps));
    },
  };
}
