import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import {
  AppError,
  DOCUMENT_AS,
  noBodyIsEmpty,
  requireUser,
  storefrontTenant,
  userOf,
} from '../platform/http/index.ts';
import { resolveAddresses } from './cart-addresses.ts';
import { mergeGuestCart } from './cart-merge.ts';
import {
  AddItemBody,
  AddressesBody,
  AvailableShippingOptions,
  CartView,
  CreateCartBody,
  ItemParams,
  MergeView,
  NewCartView,
  ShippingChoiceBody,
  STAFF_SECURITY,
  STOREFRONT_SECURITY,
  UpdateItemBody,
} from './cart-schemas.ts';
import type { CartService } from './cart-service.ts';
import { findCart, touchCart } from './cart-store.ts';
import { CART_TOKEN_HEADER, cartLocatorOf, guestTokenHash } from './cart-token.ts';
import type { CartDeps } from './deps.ts';
import { assertIsoCurrency } from './settings-rules.ts';
import { listShippingOptions, serves } from './shipping-option-store.ts';

const base = { tags: ['cart'], security: STOREFRONT_SECURITY };

// Addresses are checked field by field in cart-addresses.ts, which names every failing field.
const LooseAddress = Type.Optional(
  Type.Union([Type.Object({}, { additionalProperties: true, maxProperties: 20 }), Type.Null()]),
);
const AddressesIn = Type.Object(
  { shipping: LooseAddress, billing: LooseAddress },
  { additionalProperties: false, [DOCUMENT_AS]: AddressesBody },
);

/** The storefront cart: /cart, its items, addresses, shipping choice, and merging a guest cart. */
export function cartRoutes(deps: CartDeps, service: CartService) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const tenantOf = (request: Parameters<typeof storefrontTenant>[0]) =>
      storefrontTenant(request, deps.resolveTenant);
    // A shopper's cart (their name, address, phone) is never stored by a cache: a guest names it
    // with X-Cart-Token, which no cache keys on, and sends no Authorization or Cookie, so a shared
    // cache would answer the next shopper's GET /cart with it.
    root.addHook('onSend', async (_request, reply, payload) => {
      reply.header('cache-control', 'no-store');
      return payload;
    });

    app.get(
      '/cart',
      {
        schema: {
          ...base,
          operationId: 'getCart',
          summary:
            'Your cart (a guest sends X-Cart-Token), checked against the catalog and stock now; 404 when you have none',
          response: { 200: CartView },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        const cart = await service.read(tenantId, cartLocatorOf(request));
        if (!cart) throw new AppError('NOT_FOUND', 'cart not found');
        return cart;
      },
    );

    app.post(
      '/cart',
      {
        // A guest's answer carries its token, a secret shown once: it is never stored for replay.
        config: { idempotency: false },
        // The body is optional: none is an empty one.
        preValidation: noBodyIsEmpty,
        schema: {
          ...base,
          operationId: 'createCart',
          summary:
            'Start a cart. A guest gets a new cart and its token (send it back in X-Cart-Token); a signed-in customer gets their cart (201 when new)',
          body: CreateCartBody,
          response: { 200: NewCartView, 201: NewCartView },
        },
      },
      async (request, reply) => {
        const tenantId = await tenantOf(request);
        const currency = request.body.currency;
        assertIsoCurrency(currency);
        const principal = request.principal;
        if (principal?.kind === 'user') {
          const { cart, created } = await service.createForCustomer(tenantId, principal.userId, currency);
          reply.code(created ? 201 : 200);
          return { cart };
        }
        const { cart, token } = await service.createGuest(tenantId, currency);
        reply.code(201).header(CART_TOKEN_HEADER, token);
        return { cart, token };
      },
    );

    app.post(
      '/cart/items',
      {
        schema: {
          ...base,
          operationId: 'addCartItem',
          summary:
            "Add a variant (by variantId or sku); a customer's cart is created on the first add. Honours Idempotency-Key",
          body: AddItemBody,
          response: { 201: CartView },
        },
      },
      async (request, reply) => {
        const { variantId, sku } = request.body;
        if ((variantId === undefined) === (sku === undefined)) {
          const message = 'send exactly one of variantId and sku';
          throw new AppError('VALIDATION_FAILED', message, {
            errors: [{ in: 'body', pointer: variantId === undefined ? '/variantId' : '/sku', message }],
          });
        }
        assertIsoCurrency(request.body.currency);
        const tenantId = await tenantOf(request);
        const cart = await service.addItem(tenantId, cartLocatorOf(request), request.body);
        reply.code(201);
        return cart;
      },
    );

    app.put(
      '/cart/items/:itemId',
      {
        schema: {
          ...base,
          operationId: 'updateCartItem',
          summary: "Set a line's quantity (0 removes it); also acknowledges a changed price",
          params: ItemParams,
          body: UpdateItemBody,
          response: { 200: CartView },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        return service.updateItem(
          tenantId,
          cartLocatorOf(request),
          request.params.itemId,
          request.body.quantity,
        );
      },
    );

    app.delete(
      '/cart/items/:itemId',
      {
        schema: {
          ...base,
          operationId: 'removeCartItem',
          summary: 'Remove a line',
          params: ItemParams,
          response: { 200: CartView },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        return service.removeItem(tenantId, cartLocatorOf(request), request.params.itemId);
      },
    );

    app.delete(
      '/cart/items',
      {
        schema: {
          ...base,
          operationId: 'emptyCart',
          summary: 'Remove every line (the cart, its addresses and shipping choice stay)',
          response: { 200: CartView },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        return service.empty(tenantId, cartLocatorOf(request));
      },
    );

    app.put(
      '/cart/addresses',
      {
        schema: {
          ...base,
          operationId: 'setCartAddresses',
          summary: 'Set the shipping and billing addresses: from your address book ({addressId}) or inline',
          body: AddressesIn,
          response: { 200: CartView },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        const locator = cartLocatorOf(request);
        const userId = locator.kind === 'customer' ? locator.customerId : undefined;
        const addresses = await resolveAddresses(deps, tenantId, userId, request.body);
        return service.setAddresses(tenantId, locator, addresses);
      },
    );

    app.get(
      '/cart/shipping-options',
      {
        schema: {
          ...base,
          operationId: 'listCartShippingOptions',
          summary:
            "Shipping options for your cart's shipping country and currency (none before a shipping address)",
          response: { 200: AvailableShippingOptions },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        const locator = cartLocatorOf(request);
        // Only the cart's row is needed (its country and currency), not its lines checked again.
        const found = await withTenant(deps.db, tenantId, async (trx) => {
          const row = await findCart(trx, tenantId, locator);
          if (!row) return undefined;
          await touchCart(trx, tenantId, row);
          return { cart: row, options: await listShippingOptions(trx, tenantId) };
        });
        if (!found) throw new AppError('NOT_FOUND', 'cart not found');
        const { cart, options } = found;
        const country = cart.shippingAddress?.country;
        return {
          items: options
            .filter((o) => serves(o, country, cart.currency))
            .map((o) => ({
              id: o.id,
              name: o.name,
              price: o.prices[cart.currency!]!,
              currency: cart.currency!,
            })),
        };
      },
    );

    app.put(
      '/cart/shipping-option',
      {
        schema: {
          ...base,
          operationId: 'chooseCartShippingOption',
          summary: 'Choose a shipping option that serves the shipping address (null: none)',
          body: ShippingChoiceBody,
          response: { 200: CartView },
        },
      },
      async (request) => {
        const tenantId = await tenantOf(request);
        return service.setShippingOption(tenantId, cartLocatorOf(request), request.body.shippingOptionId);
      },
    );

    app.post(
      '/cart/merge',
      {
        preValidation: requireUser(),
        schema: {
          ...base,
          security: STAFF_SECURITY,
          operationId: 'mergeGuestCart',
          summary:
            'After login: move the guest cart named by X-Cart-Token into your cart (quantities summed, checked against stock) and delete it',
          response: { 200: MergeView },
        },
      },
      async (request) => {
        const user = userOf(request);
        const tenantId = await tenantOf(request);
        return mergeGuestCart(deps, service, tenantId, user.userId, guestTokenHash(request));
      },
    );
  };
}
