import type { CartRow, LineRow } from './cart-store.ts';
import { listLines, updateCart, updateLine } from './cart-store.ts';
import { checkLine, isUnavailable, type LineProblem, type Snapshot } from './line-checks.ts';
import { type PricingContext, pricingContext } from './pricing-context.ts';
import { serves } from './shipping-option-store.ts';
import type { CartAddress, CartTrx } from './tables.ts';
import { computeTotals } from './totals.ts';

/** A line as the API shows it: its row (less the raw priceChangedFrom) with money and problems worked out. */
export type CartLine = Omit<LineRow, 'priceChangedFrom'> & {
  subtotal: number;
  tax: number;
  total: number;
  /** Set when the price changed since the shopper last touched this line: the price they saw and the one that holds now. */
  priceChanged: { from: number; to: number } | null;
  problem: LineProblem | null;
};

/** A cart as the API shows it, totals computed from its rows at the moment of the answer. */
export type Cart = {
  id: string;
  customerId: string | null;
  currency: string | null;
  lines: CartLine[];
  itemCount: number;
  shippingAddress: CartAddress | null;
  billingAddress: CartAddress | null;
  shippingOption: { id: string; name: string; price: number } | null;
  totals: {
    subtotal: number;
    discount: number;
    shipping: number;
    tax: number;
    total: number;
    taxRateBps: number;
    pricesIncludeTax: boolean;
  };
  createdAt: string;
  updatedAt: string;
  /** When the cart is purged unless used again. */
  expiresAt: string;
};

/** What the cart's totals need besides its lines, as its address and shipping option say now. */
export const pricingContextOf = (trx: CartTrx, tenantId: string, cart: CartRow): Promise<PricingContext> =>
  pricingContext(trx, tenantId, cart.shippingAddress ?? null, cart.shippingOptionId);

/**
 * Checks every line against the snapshot (storing new prices and catalog fields), drops a shipping
 * option that no longer serves the cart, and returns the cart with its totals. Runs in the
 * transaction that holds the cart's row lock.
 */
export async function cartView(
  trx: CartTrx,
  tenantId: string,
  cart: CartRow,
  snapshot: Snapshot,
  ttlSeconds: number,
  /** The cart's lines, when the caller read them under the same lock and changed none since. */
  lines?: LineRow[],
  /** The cart's pricing context (pricingContextOf), when the caller read it under the same lock. */
  known?: PricingContext,
): Promise<Cart> {
  const rows = lines ?? (await listLines(trx, tenantId, cart.id));
  const checked: Array<{ line: LineRow; problem: LineProblem | null }> = [];
  for (const row of rows) {
    const { problem, changes } = checkLine(row, snapshot, cart.currency);
    if (changes) await updateLine(trx, tenantId, row.id, changes);
    checked.push({ line: { ...row, ...changes }, problem });
  }
  const address = cart.shippingAddress;
  const context = known ?? (await pricingContextOf(trx, tenantId, cart));
  const settings = { pricesIncludeTax: context.pricesIncludeTax };
  const taxRateBps = context.taxRateBps;
  let shippingOption: Cart['shippingOption'] = null;
  if (cart.shippingOptionId) {
    const { option } = context;
    if (option && serves(option, address?.country, cart.currency)) {
      shippingOption = { id: option.id, name: option.name, price: option.prices[cart.currency!]! };
    } else {
      await updateCart(trx, tenantId, cart.id, { shippingOptionId: null });
    }
  }
  const counted = checked.filter((c) => !isUnavailable(c.problem)).map((c) => c.line);
  const totals = computeTotals({
    lines: counted,
    taxRateBps,
    pricesIncludeTax: settings.pricesIncludeTax,
    shipping: shippingOption?.price ?? 0,
  });
  const none = { subtotal: 0, tax: 0, total: 0 };
  return {
    id: cart.id,
    customerId: cart.customerId,
    currency: cart.currency,
    lines: checked.map(({ line, problem }) => ({
      id: line.id,
      variantId: line.variantId,
      productId: line.productId,
      sku: line.sku,
      productTitle: line.productTitle,
      variantTitle: line.variantTitle,
      options: line.options,
      image: line.image,
      quantity: line.quantity,
      unitPrice: line.unitPrice,
      ...(totals.lines[line.id] ?? none),
      priceChanged:
        line.priceChangedFrom === null ? null : { from: line.priceChangedFrom, to: line.unitPrice },
      problem,
      createdAt: line.createdAt,
      updatedAt: line.updatedAt,
    })),
    itemCount: counted.reduce((sum, l) => sum + l.quantity, 0),
    shippingAddress: cart.shippingAddress,
    billingAddress: cart.billingAddress,
    shippingOption,
    totals: {
      subtotal: totals.subtotal,
      discount: totals.discount,
      shipping: totals.shipping,
      tax: totals.tax,
      total: totals.total,
      taxRateBps,
      pricesIncludeTax: settings.pricesIncludeTax,
    },
    createdAt: cart.createdAt,
    updatedAt: cart.updatedAt,
    expiresAt: new Date(cart.activeAt.getTime() + ttlSeconds * 1000).toISOString(),
  };
}
