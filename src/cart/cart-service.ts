import { together, withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import {
  type CartLocator,
  type CartRow,
  deleteLines,
  ensureCustomerCart,
  findCart,
  findLockedCartWithLines,
  insertGuestCart,
  insertLine,
  type LineRow,
  listLines,
  listLinesOf,
  MAX_LINES,
  MAX_QUANTITY,
  touchCart,
  updateCart,
  updateLine,
} from './cart-store.ts';
import { hashCartToken, newCartToken } from './cart-token.ts';
import { type Cart, cartView, pricingContextOf } from './cart-view.ts';
import type { CartDeps, SellableVariant } from './deps.ts';
import { assertInStock, assertSellable, describe, type Snapshot } from './line-checks.ts';
import { findShippingOption, serves } from './shipping-option-store.ts';
import type { CartAddress, CartTrx } from './tables.ts';

export type VariantRef = { variantId?: string | undefined; sku?: string | undefined };

/** The line a change is about, found by the catalog before the change's transaction. */
type Apply = (
  trx: CartTrx,
  cart: CartRow,
  snapshot: Snapshot,
  target: SellableVariant | undefined,
  created: boolean,
  /** The cart's lines as read under its lock. */
  lines: LineRow[],
) => Promise<void>;

const EMPTY: Snapshot = { asked: new Set(), variants: new Map(), stock: new Map() };

export const cartNotFound = () => new AppError('NOT_FOUND', 'cart not found');

/** The first currency the variant is priced in (alphabetically), for a cart whose currency is not set yet. */
function defaultCurrency(variant: SellableVariant): string | undefined {
  return Object.keys(variant.prices).sort()[0];
}

/**
 * Every read and change of a cart, each in one transaction that locks the cart row (two changes
 * of one cart queue instead of overwriting each other) and looks the cart's variants up in the
 * catalog and in inventory in that same transaction.
 */
export function createCartService(deps: CartDeps) {
  const { db } = deps;
  const ttl = deps.ctx.config.cartTtlSeconds;

  async function snapshotOf(
    tenantId: string,
    variantIds: string[],
    target?: VariantRef,
    trx?: CartTrx,
  ): Promise<{ snapshot: Snapshot; target: SellableVariant | undefined }> {
    const targetId = target?.variantId?.toLowerCase();
    const ids = [...new Set([...variantIds, ...(targetId ? [targetId] : [])])];
    const skus = target?.sku ? [target.sku] : [];
    if (ids.length === 0 && skus.length === 0) return { snapshot: EMPTY, target: undefined };
    const found = deps.catalog.findVariants(
      tenantId,
      { ...(ids.length ? { ids } : {}), ...(skus.length ? { skus } : {}) },
      trx,
    );
    // Without a SKU to resolve, the stock of the asked ids is read together with the catalog (one
    // round trip); an id the catalog does not know has no stock to show anyway.
    const asked = skus.length === 0 ? deps.inventory.availability(tenantId, ids, trx) : undefined;
    const [variants, askedStock] = await together([found, asked]);
    const byId = new Map(variants.map((v) => [v.variantId, v]));
    const hit = targetId ? byId.get(targetId) : variants.find((v) => v.sku === target?.sku);
    const stock =
      askedStock ??
      (byId.size > 0 ? await deps.inventory.availability(tenantId, [...byId.keys()], trx) : new Map());
    return { snapshot: { asked: new Set([...ids, ...byId.keys()]), variants: byId, stock }, target: hit };
  }

  /**
   * Runs apply on the locked cart (the customer's is created when `create`) and answers the cart
   * after it; without apply, a read: the cart is marked as used and answered. One transaction:
   * the cart row is locked first, then its variants are looked up in the catalog and inventory.
   */
  async function change(
    tenantId: string,
    locator: CartLocator,
    options: { target?: VariantRef; create?: boolean },
    apply?: Apply,
    inTrx?: CartTrx,
  ): Promise<Cart> {
    const creates = options.create === true && locator.kind === 'customer';
    const run = <T>(fn: (trx: CartTrx) => Promise<T>) => (inTrx ? fn(inTrx) : withTenant(db, tenantId, fn));
    return run(async (trx) => {
      // In a caller's transaction (the checkout's), a cart another checkout holds is not waited
      // for: it fails at once (55P03), and the caller answers that checkout.
      // The lines are read in a statement after the lock (see findLockedCartWithLines), sent with it.
      const {
        cart: locked,
        created,
        lines,
      } = creates && locator.kind === 'customer'
        ? await ensureCustomerCart(trx, tenantId, locator.customerId, null).then(async (made) => ({
            ...made,
            lines: made.created ? [] : await listLines(trx, tenantId, made.cart.id),
          }))
        : await together([
            findCart(trx, tenantId, locator, inTrx ? 'nowait' : true),
            listLinesOf(trx, tenantId, locator),
          ]).then(([cart, lines]) => ({ cart, created: false, lines }));
      if (!locked) throw cartNotFound();
      const ids = lines.map((l) => l.variantId);
      if (apply) {
        const { snapshot, target } = await snapshotOf(tenantId, ids, options.target, trx);
        await apply(trx, locked, snapshot, target, created, lines);
        const after = await findLockedCartWithLines(trx, tenantId, locked.id);
        return cartView(trx, tenantId, after!.cart, snapshot, ttl, after!.lines);
      }
      // A read: the lines are as just read (the row lock keeps them so); the catalog, the stock,
      // the pricing context and the cart's use are read and marked together.
      const [{ snapshot }, context, touched] = await together([
        snapshotOf(tenantId, ids, options.target, trx),
        pricingContextOf(trx, tenantId, locked),
        touchCart(trx, tenantId, locked),
      ]);
      return cartView(trx, tenantId, touched, snapshot, ttl, lines, context);
    });
  }

  const changed = (trx: CartTrx, tenantId: string, cart: CartRow) => updateCart(trx, tenantId, cart.id, {});

  return {
    snapshotOf,
    /** The cart, its lines checked against the catalog and inventory now; undefined when there is none. */
    /** In `trx` (the caller's transaction of the tenant) when given. */
    async read(tenantId: string, locator: CartLocator, trx?: CartTrx): Promise<Cart | undefined> {
      try {
        return await change(tenantId, locator, {}, undefined, trx);
      } catch (error) {
        if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
        throw error;
      }
    },

    /** A new guest cart and its token (shown this once). */
    async createGuest(
      tenantId: string,
      currency: string | undefined,
    ): Promise<{ cart: Cart; token: string }> {
      const token = newCartToken();
      const cart = await withTenant(db, tenantId, async (trx) => {
        const row = await insertGuestCart(trx, tenantId, hashCartToken(token), currency ?? null);
        return cartView(trx, tenantId, row, EMPTY, ttl);
      });
      return { cart, token };
    },

    /** The customer's cart, created when they have none. */
    async createForCustomer(
      tenantId: string,
      customerId: string,
      currency: string | undefined,
    ): Promise<{ cart: Cart; created: boolean }> {
      let created = false;
      const cart = await change(
        tenantId,
        { kind: 'customer', customerId },
        { create: true },
        async (trx, row, _snapshot, _target, isNew, lines) => {
          created = isNew;
          if (currency === undefined || row.currency === currency) return;
          // An empty cart takes the currency asked for; one with lines keeps the currency they are priced in.
          if (lines.length > 0) {
            throw new AppError(
              'CONFLICT',
              `your cart is in ${row.currency}; remove its items to change its currency to ${currency}`,
            );
          }
          await updateCart(trx, tenantId, row.id, { currency });
        },
      );
      return { cart, created };
    },

    /** Adds quantity units of a variant (to its line if there is one). */
    addItem(
      tenantId: string,
      locator: CartLocator,
      input: VariantRef & { quantity: number; currency?: string | undefined },
    ): Promise<Cart> {
      const ref = input.variantId ?? input.sku ?? '';
      return change(
        tenantId,
        locator,
        { target: input, create: true },
        async (trx, cart, snapshot, target, _created, lines) => {
          // An empty cart takes the currency the add names; one with lines keeps theirs.
          const kept = lines.length > 0 || !input.currency ? cart.currency : null;
          if (kept && input.currency && input.currency !== kept) {
            throw new AppError(
              'CONFLICT',
              `the cart is in ${kept}, not ${input.currency}; remove its items to change its currency`,
            );
          }
          const currency = kept ?? input.currency ?? (target && defaultCurrency(target)) ?? 'XXX';
          assertSellable(target, ref, currency);
          const existing = lines.find((l) => l.variantId === target.variantId);
          const quantity = (existing?.quantity ?? 0) + input.quantity;
          if (quantity > MAX_QUANTITY) {
            throw new AppError('CONFLICT', `a cart line holds at most ${MAX_QUANTITY} units`);
          }
          if (!existing && lines.length >= MAX_LINES) {
            throw new AppError('CONFLICT', `a cart holds at most ${MAX_LINES} lines`);
          }
          assertInStock(snapshot, target.variantId, quantity);
          const fields = {
            ...describe(target),
            quantity,
            unitPrice: target.prices[currency]!,
            priceChangedFrom: null,
          };
          if (existing) await updateLine(trx, tenantId, existing.id, fields);
          else await insertLine(trx, tenantId, cart.id, fields);
          await updateCart(trx, tenantId, cart.id, cart.currency === currency ? {} : { currency });
        },
      );
    },

    /** Sets a line's quantity (0 removes it); raising it is checked against stock, and touching it acknowledges a price change. */
    async updateItem(
      tenantId: string,
      locator: CartLocator,
      lineId: string,
      quantity: number,
    ): Promise<Cart> {
      return change(tenantId, locator, {}, async (trx, cart, snapshot, _target, _created, lines) => {
        const line = lines.find((l) => l.id === lineId.toLowerCase());
        if (!line) throw new AppError('NOT_FOUND', `cart item ${lineId} not found`);
        if (quantity === 0) {
          await deleteLines(trx, tenantId, cart.id, lineId);
        } else {
          const variant = snapshot.variants.get(line.variantId);
          assertSellable(variant, line.variantId, cart.currency ?? 'XXX');
          if (quantity > line.quantity) assertInStock(snapshot, line.variantId, quantity);
          await updateLine(trx, tenantId, line.id, {
            ...describe(variant),
            quantity,
            unitPrice: variant.prices[cart.currency!]!,
            priceChangedFrom: null,
          });
        }
        await changed(trx, tenantId, cart);
      });
    },

    async removeItem(tenantId: string, locator: CartLocator, lineId: string): Promise<Cart> {
      return change(tenantId, locator, {}, async (trx, cart) => {
        if ((await deleteLines(trx, tenantId, cart.id, lineId.toLowerCase())) === 0) {
          throw new AppError('NOT_FOUND', `cart item ${lineId} not found`);
        }
        await changed(trx, tenantId, cart);
      });
    },

    /** Removes every line; the cart, its currency, addresses and shipping choice stay. */
    async empty(tenantId: string, locator: CartLocator): Promise<Cart> {
      return change(tenantId, locator, {}, async (trx, cart) => {
        await deleteLines(trx, tenantId, cart.id);
        await changed(trx, tenantId, cart);
      });
    },

    /** Sets the addresses given (null clears one, undefined keeps it). */
    async setAddresses(
      tenantId: string,
      locator: CartLocator,
      addresses: { shipping?: CartAddress | null; billing?: CartAddress | null },
    ): Promise<Cart> {
      return change(tenantId, locator, {}, async (trx, cart) => {
        await updateCart(trx, tenantId, cart.id, {
          ...(addresses.shipping !== undefined ? { shippingAddress: addresses.shipping } : {}),
          ...(addresses.billing !== undefined ? { billingAddress: addresses.billing } : {}),
        });
      });
    },

    /** Chooses a shipping option that serves the cart's shipping country and currency (null: none). */
    async setShippingOption(tenantId: string, locator: CartLocator, optionId: string | null): Promise<Cart> {
      return change(tenantId, locator, {}, async (trx, cart) => {
        if (optionId !== null) {
          const option = await findShippingOption(trx, tenantId, optionId);
          if (!option) throw new AppError('NOT_FOUND', `shipping option ${optionId} not found`);
          const country = cart.shippingAddress?.country;
          if (!country) throw new AppError('CONFLICT', 'set a shipping address before choosing how to ship');
          if (!serves(option, country, cart.currency)) {
            throw new AppError(
              'CONFLICT',
              `shipping option ${option.name} does not ship to ${country} in ${cart.currency ?? 'this cart'}`,
            );
          }
        }
        await updateCart(trx, tenantId, cart.id, { shippingOptionId: optionId });
      });
    },
  };
}

export type CartService = ReturnType<typeof createCartService>;
