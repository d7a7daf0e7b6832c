import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Transaction } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { resolveAddresses } from './cart-addresses.ts';
import { clearCheckedOut, forgetCheckout, recordCheckout } from './cart-checkout.ts';
import { startCartPurge } from './cart-purge.ts';
import { cartRoutes } from './cart-routes.ts';
import { createCartService } from './cart-service.ts';
import { deleteCart } from './cart-store.ts';
import { cartLocatorOf } from './cart-token.ts';
import type { Cart } from './cart-view.ts';
import type { CartDeps, CartModuleDeps } from './deps.ts';
import { shippingOptionRoutes } from './shipping-option-routes.ts';
import type { CartDb, CartTrx } from './tables.ts';
import { taxRoutes } from './tax-routes.ts';

export type CartModule = MercatoModule & {
  /**
   * A cart by id, its lines checked against the catalog and inventory now (prices refreshed,
   * problems flagged), with its totals; undefined when there is none. For the order saga.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  getCart(tenantId: string, cartId: string, trx?: Transaction<any>): Promise<Cart | undefined>;
  /**
   * The cart of the request's shopper (a signed-in user's own, else the guest cart of its
   * X-Cart-Token, 404 without one), checked as getCart checks, with the SHA-256 of the guest's
   * token (null for a customer's cart). In the caller's `trx` (getCart's too) the cart is locked
   * without waiting: one another transaction holds fails at once with SQLSTATE 55P03.
   */
  shopperCart(
    tenantId: string,
    request: FastifyRequest,
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx?: Transaction<any>,
  ): Promise<{ cart: Cart | undefined; guestTokenHash: string | null }>;
  /**
   * The SHA-256 of the request's guest cart token, null for a signed-in user (whose cart is their
   * own), without reading the cart: what shopperCart answers as guestTokenHash (404 without one).
   */
  shopperTokenHash(request: FastifyRequest): string | null;
  /**
   * A draft cart for an order staff place from explicit lines (as Shopify's draft orders): a new
   * cart owned by no shopper (a guest cart whose token is never shown), filled and checked as a
   * shopper's would be, so its prices, stock, tax and shipping are the storefront's.
   */
  draftCart(
    tenantId: string,
    input: {
      currency: string;
      lines: { variantId: string; quantity: number }[];
      shippingAddress: unknown;
      billingAddress?: unknown;
      shippingOptionId?: string | undefined;
    },
  ): Promise<Cart>;
  /**
   * Records what an order placed from the cart takes (the units of each line of `cart`, as read),
   * in the transaction that creates the order: clearCart takes out no more. Only a new order's
   * checkout records: a replay of its Idempotency-Key reads the cart and leaves the record alone.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  recordCheckout(trx: Transaction<any>, tenantId: string, cart: Cart, orderId: string): Promise<void>;
  /**
   * Forgets the record of an order that ended failed or cancelled (its units are the shopper's
   * again), in the caller's transaction; another order's record stays.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  forgetCheckout(trx: Transaction<any>, tenantId: string, cartId: string, orderId: string): Promise<void>;
  /**
   * Takes out of a cart what its completed order took, in the caller's transaction of the tenant
   * (the saga's): the units of each line recordCheckout recorded. What the shopper added since
   * stays; the cart is deleted when nothing is left.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  clearCart(trx: Transaction<any>, tenantId: string, cartId: string): Promise<void>;
};

/** Carts of customers and guests, shipping options, tax rates; purges idle carts. */
export async function createCart(ctx: AppContext, moduleDeps: CartModuleDeps): Promise<CartModule> {
  const deps: CartDeps = { ...moduleDeps, ctx, db: ctx.db.kysely as CartDb };
  const service = createCartService(deps);
  let stopPurge: (() => void) | undefined;
  return {
    name: 'cart',
    async draftCart(tenantId, input) {
      // The addresses are checked first, so a bad one leaves no half-filled cart behind.
      const addresses = await resolveAddresses(deps, tenantId, undefined, {
        shipping: input.shippingAddress,
        ...(input.billingAddress !== undefined ? { billing: input.billingAddress } : {}),
      }).catch((error) => {
        if (error instanceof AppError && Array.isArray(error.extras.errors)) {
          for (const e of error.extras.errors)
            e.pointer = e.pointer.replace(/^\/(shipping|billing)/, '/$1Address');
        }
        throw error;
      });
      const { cart } = await service.createGuest(tenantId, input.currency);
      const locator = { kind: 'id', cartId: cart.id } as const;
      try {
        for (const line of input.lines) await service.addItem(tenantId, locator, line);
        let drafted = await service.setAddresses(tenantId, locator, addresses);
        if (input.shippingOptionId) {
          drafted = await service.setShippingOption(tenantId, locator, input.shippingOptionId);
        }
        return drafted;
      } catch (error) {
        // A line or choice refused leaves no half-filled draft behind (the idle purge is the net
        // for a crash in between, and for a delete that fails: logged, the refusal answered).
        await withTenant(deps.db, tenantId, (trx) => deleteCart(trx, tenantId, cart.id)).catch(
          (deleteError) =>
            ctx.logger
              .child({ module: 'cart' })
              .warn(
                { err: deleteError, tenantId, cartId: cart.id },
                'cart: a refused draft cart was not deleted; the idle purge will',
              ),
        );
        throw error;
      }
    },
    shopperTokenHash(request) {
      const locator = cartLocatorOf(request);
      return locator.kind === 'guest' ? locator.tokenHash : null;
    },
    async shopperCart(tenantId, request, trx) {
      const locator = cartLocatorOf(request);
      const cart = await service.read(tenantId, locator, trx as CartTrx | undefined);
      return { cart, guestTokenHash: locator.kind === 'guest' ? locator.tokenHash : null };
    },
    recordCheckout: (trx, tenantId, cart, orderId) => recordCheckout(trx as CartTrx, tenantId, cart, orderId),
    forgetCheckout: (trx, tenantId, cartId, orderId) =>
      forgetCheckout(trx as CartTrx, tenantId, cartId, orderId),
    clearCart: (trx, tenantId, cartId) => clearCheckedOut(trx as CartTrx, tenantId, cartId),
    getCart: async (tenantId, cartId, trx) =>
      isUuid(cartId)
        ? service.read(tenantId, { kind: 'id', cartId: cartId.toLowerCase() }, trx as CartTrx | undefined)
        : undefined,
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
