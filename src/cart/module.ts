import type { FastifyInstance } from 'fastify';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { startCartPurge } from './cart-purge.ts';
import { cartRoutes } from './cart-routes.ts';
import { createCartService } from './cart-service.ts';
import type { Cart } from './cart-view.ts';
import type { CartDeps, CartModuleDeps } from './deps.ts';
import { shippingOptionRoutes } from './shipping-option-routes.ts';
import type { CartDb } from './tables.ts';
import { taxRoutes } from './tax-routes.ts';

export type CartModule = MercatoModule & {
  /**
   * A cart by id, its lines checked against the catalog and inventory now (prices refreshed,
   * problems flagged), with its totals; undefined when there is none. For the order saga.
   */
  getCart(tenantId: string, cartId: string): Promise<Cart | undefined>;
};

/** Carts of customers and guests, shipping options, tax rates; purges idle carts. */
export async function createCart(ctx: AppContext, moduleDeps: CartModuleDeps): Promise<CartModule> {
  const deps: CartDeps = { ...moduleDeps, ctx, db: ctx.db.kysely as CartDb };
  const service = createCartService(deps);
  let stopPurge: (() => void) | undefined;
  return {
    name: 'cart',
    getCart: async (tenantId, cartId) =>
      isUuid(cartId) ? service.read(tenantId, { kind: 'id', cartId: cartId.toLowerCase() }) : undefined,
    async routes(app: FastifyInstance) {
      await app.register(cartRoutes(deps, service));
      await app.register(shippingOptionRoutes(deps));
      await app.register(taxRoutes(deps));
    },
    async start() {
      stopPurge = startCartPurge(ctx, deps.db);
    },
    async stop() {
      stopPurge?.();
    },
  };
}
