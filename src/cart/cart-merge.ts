import { withTenant } from '../platform/db/index.ts';
import { type CartService, cartNotFound } from './cart-service.ts';
import {
  type CartRow,
  deleteCart,
  ensureCustomerCart,
  findCart,
  insertLine,
  type LineRow,
  listLines,
  MAX_LINES,
  MAX_QUANTITY,
  setQuantities,
  updateCart,
  updateLine,
} from './cart-store.ts';
import { type Cart, cartView } from './cart-view.ts';
import type { CartDeps } from './deps.ts';
import { describe, type Snapshot, sellable } from './line-checks.ts';
import { findShippingOption } from './shipping-option-store.ts';
import type { CartTrx } from './tables.ts';

/** A guest line that did not move as it was. */
export type MergeAdjustment = {
  variantId: string;
  sku: string;
  /** Units the customer's line would have held (theirs plus the guest's). */
  requested: number;
  /** Units it holds now (0: the line was not moved). */
  quantity: number;
  reason:
    | 'VARIANT_NOT_FOUND'
    | 'PRODUCT_NOT_AVAILABLE'
    | 'PRICE_NOT_AVAILABLE'
    | 'INSUFFICIENT_STOCK'
    | 'CART_FULL'
    /** The sum passed the 1,000 units a line holds. */
    | 'LINE_LIMIT'
    /** Units an order placed from the guest cart took (its payment pending): they stay with it. */
    | 'CHECKED_OUT';
};

type Target = {
  lines: LineRow[];
  currency: string;
  /** The guest cart's currency: the prices its shopper saw were in it. */
  guestCurrency: string | null;
  adjustments: MergeAdjustment[];
};

/**
 * Moves the guest's lines into the customer's, but for the units an order placed from the guest
 * cart took (its checkout record): they stay there, so the order's completion, which names the
 * guest cart, takes them out; merged, they would outlive it. Returns the guest lines kept so.
 */
async function moveGuestLines(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  guest: CartRow,
  guestLines: LineRow[],
  snapshot: Snapshot,
  target: Target,
): Promise<LineRow[]> {
  const kept: LineRow[] = [];
  for (const line of guestLines) {
    const taken = Math.min(guest.checkoutLines?.[line.id] ?? 0, line.quantity);
    const reported = target.adjustments.length;
    const had = target.lines.find((l) => l.variantId === line.variantId)?.quantity ?? 0;
    if (taken < line.quantity) {
      await moveLine(trx, tenantId, cartId, { ...line, quantity: line.quantity - taken }, snapshot, target);
    }
    if (taken === 0) continue;
    kept.push({ ...line, quantity: taken });
    // Reported unless the units that could move were reported already (stock, limits).
    if (target.adjustments.length > reported) continue;
    const quantity = target.lines.find((l) => l.variantId === line.variantId)?.quantity ?? 0;
    const { variantId, sku } = line;
    target.adjustments.push({
      variantId,
      sku,
      requested: had + line.quantity,
      quantity,
      reason: 'CHECKED_OUT',
    });
  }
  return kept;
}

/**
 * What is left of the guest cart after a merge: the units a pending order took (`kept`, with the
 * cart's record), which its completion takes out, deleting the cart; the cart goes at once when
 * there are none.
 */
async function keepCheckedOut(
  trx: CartTrx,
  tenantId: string,
  guestId: string,
  lines: LineRow[],
  kept: LineRow[],
): Promise<void> {
  if (kept.length === 0) return deleteCart(trx, tenantId, guestId);
  const keep = new Map(kept.map((l) => [l.id, l.quantity]));
  await setQuantities(trx, tenantId, guestId, lines, (line) => keep.get(line.id) ?? 0);
}

/** Moves one guest line into the customer's lines: quantities summed, capped by stock and limits. */
async function moveLine(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  line: LineRow,
  snapshot: Snapshot,
  target: Target,
): Promise<void> {
  const existing = target.lines.find((l) => l.variantId === line.variantId);
  const requested = (existing?.quantity ?? 0) + line.quantity;
  const skip = (reason: MergeAdjustment['reason'], quantity = existing?.quantity ?? 0) =>
    target.adjustments.push({ variantId: line.variantId, sku: line.sku, requested, quantity, reason });
  const variant = snapshot.variants.get(line.variantId);
  if (!variant) return void skip('VARIANT_NOT_FOUND');
  if (variant.productStatus !== 'active') return void skip('PRODUCT_NOT_AVAILABLE');
  const price = variant.prices[target.currency];
  if (price === undefined) return void skip('PRICE_NOT_AVAILABLE');
  if (!existing && target.lines.length >= MAX_LINES) return void skip('CART_FULL', 0);
  const capped = Math.min(requested, MAX_QUANTITY);
  const available = sellable(snapshot, line.variantId);
  const quantity =
    available === undefined ? capped : Math.min(capped, Math.max(available, existing?.quantity ?? 0));
  if (quantity < capped) skip('INSUFFICIENT_STOCK', quantity);
  else if (quantity < requested) skip('LINE_LIMIT', quantity);
  if (quantity === 0) return;
  // The price the guest saw stays flagged when it changed; one they saw in another currency is no
  // price of this cart's to compare with (it would read as EUR cents turned into USD cents).
  const seen =
    existing || target.guestCurrency !== target.currency ? null : (line.priceChangedFrom ?? line.unitPrice);
  const fields = {
    ...describe(variant),
    quantity,
    unitPrice: price,
    priceChangedFrom: seen !== null && seen !== price ? seen : (existing?.priceChangedFrom ?? null),
  };
  if (existing) {
    await updateLine(trx, tenantId, existing.id, fields);
    existing.quantity = quantity;
  } else {
    await insertLine(trx, tenantId, cartId, fields);
    target.lines.push({ ...line, ...fields });
  }
}

/**
 * Moves a guest cart (by its token's hash) into the signed-in customer's cart after login and
 * deletes it. Quantities of a variant in both are summed and capped by what is available; lines
 * that cannot be sold any more are left out; both are reported as adjustments. The customer's
 * cart keeps its currency when it has lines, else takes the guest's; addresses and shipping
 * choice are the customer's, or the guest's where the customer has none.
 */
export async function mergeGuestCart(
  deps: CartDeps,
  service: CartService,
  tenantId: string,
  customerId: string,
  tokenHash: string,
): Promise<{ cart: Cart; adjustments: MergeAdjustment[] }> {
  for (let attempt = 1; ; attempt++) {
    const merged = await mergeOnce(
      deps,
      service,
      tenantId,
      customerId,
      tokenHash,
      attempt === MERGE_ATTEMPTS,
    );
    if (merged) return merged;
  }
}

/** Both snapshots' variants and stock (of different variants). */
const joinSnapshots = (a: Snapshot, b: Snapshot): Snapshot => ({
  asked: new Set([...a.asked, ...b.asked]),
  variants: new Map([...a.variants, ...b.variants]),
  stock: new Map([...a.stock, ...b.stock]),
});

/** Merges are tried again when a cart gained a variant between the catalog lookup and the locks. */
const MERGE_ATTEMPTS = 3;

/** One merge; undefined (nothing moved) when a line's variant was not looked up and this is not the last try. */
async function mergeOnce(
  deps: CartDeps,
  service: CartService,
  tenantId: string,
  customerId: string,
  tokenHash: string,
  last: boolean,
): Promise<{ cart: Cart; adjustments: MergeAdjustment[] } | undefined> {
  const before = await withTenant(deps.db, tenantId, async (trx) => {
    const guest = await findCart(trx, tenantId, { kind: 'guest', tokenHash });
    if (!guest) return undefined;
    const mine = await findCart(trx, tenantId, { kind: 'customer', customerId });
    const ids: string[] = [];
    for (const cart of [guest, mine]) {
      if (cart) for (const line of await listLines(trx, tenantId, cart.id)) ids.push(line.variantId);
    }
    return ids;
  });
  if (!before) throw cartNotFound();
  const looked = await service.snapshotOf(tenantId, before);
  return withTenant(deps.db, tenantId, async (trx) => {
    let snapshot = looked.snapshot;
    // The customer's cart is locked first, then the guest's: every merge takes them in this order.
    const { cart: mine } = await ensureCustomerCart(trx, tenantId, customerId, null);
    const guest = await findCart(trx, tenantId, { kind: 'guest', tokenHash }, true);
    if (!guest) throw cartNotFound();
    const lines = await listLines(trx, tenantId, mine.id);
    const guestLines = await listLines(trx, tenantId, guest.id);
    // A line added after the lookup would be judged without its variant (and a guest line left
    // out as VARIANT_NOT_FOUND): look again, and on the last try look those up under the locks.
    const missing = [...lines, ...guestLines].map((l) => l.variantId).filter((id) => !snapshot.asked.has(id));
    if (missing.length > 0) {
      if (!last) return undefined;
      snapshot = joinSnapshots(
        snapshot,
        (await service.snapshotOf(tenantId, missing, undefined, trx)).snapshot,
      );
    }
    const currency = (lines.length > 0 ? mine.currency : (guest.currency ?? mine.currency)) ?? null;
    const target: Target = {
      lines,
      currency: currency ?? 'XXX',
      guestCurrency: guest.currency,
      adjustments: [],
    };
    const kept = await moveGuestLines(trx, tenantId, mine.id, guest, guestLines, snapshot, target);
    await keepCheckedOut(trx, tenantId, guest.id, guestLines, kept);
    const mineOption =
      mine.shippingOptionId && (await findShippingOption(trx, tenantId, mine.shippingOptionId));
    await updateCart(trx, tenantId, mine.id, {
      ...(currency !== null && currency !== mine.currency ? { currency } : {}),
      ...(mine.shippingAddress === null && guest.shippingAddress !== null
        ? { shippingAddress: guest.shippingAddress }
        : {}),
      ...(mine.billingAddress === null && guest.billingAddress !== null
        ? { billingAddress: guest.billingAddress }
        : {}),
      // An option deleted since the customer chose it is none (reads drop it; its delete did not).
      ...(!mineOption && guest.shippingOptionId !== null ? { shippingOptionId: guest.shippingOptionId } : {}),
    });
    const cart = await findCart(trx, tenantId, { kind: 'id', cartId: mine.id });
    return {
      cart: await cartView(trx, tenantId, cart!, snapshot, deps.ctx.config.cartTtlSeconds),
      adjustments: target.adjustments,
    };
  });
}
