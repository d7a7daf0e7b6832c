import { AppError } from '../platform/http/index.ts';
import type { LineFields, LineRow } from './cart-store.ts';
import type { Availability, SellableVariant } from './deps.ts';

/** What the catalog and inventory said about the variants a change touches, read before its transaction. */
export type Snapshot = {
  /** Every variant id asked for; a line whose variant was not asked for is left as it is. */
  asked: Set<string>;
  variants: Map<string, SellableVariant>;
  stock: Map<string, Availability>;
};

/** Why a line cannot be bought as it is; lines unavailable (all but stock) count for nothing in the totals. */
export type LineProblem = {
  code: 'VARIANT_NOT_FOUND' | 'PRODUCT_NOT_AVAILABLE' | 'PRICE_NOT_AVAILABLE' | 'INSUFFICIENT_STOCK';
  detail: string;
  available?: number;
};

/** Units of the variant that can be sold now, or undefined when backorders make it unlimited. */
export function sellable(snapshot: Snapshot, variantId: string): number | undefined {
  const stock = snapshot.stock.get(variantId);
  if (stock?.allowBackorder) return undefined;
  return Math.max(stock?.available ?? 0, 0);
}

/** Throws the error a shopper gets for a variant that cannot be put in a cart in this currency. */
export function assertSellable(
  variant: SellableVariant | undefined,
  ref: string,
  currency: string,
): asserts variant is SellableVariant {
  if (!variant) throw new AppError('NOT_FOUND', `variant ${ref} not found`);
  if (variant.productStatus !== 'active') {
    throw new AppError('PRODUCT_NOT_AVAILABLE', `product ${variant.productHandle} is not for sale`, {
      variantId: variant.variantId,
    });
  }
  if (variant.prices[currency] === undefined) {
    throw new AppError(
      'PRODUCT_NOT_AVAILABLE',
      `variant ${variant.sku} has no price in ${currency}, the cart's currency`,
      {
        variantId: variant.variantId,
        reason: 'NO_PRICE_IN_CURRENCY',
        currency,
      },
    );
  }
}

/** Throws 409 INSUFFICIENT_STOCK when quantity units of the variant cannot be sold. */
export function assertInStock(snapshot: Snapshot, variantId: string, quantity: number): void {
  const available = sellable(snapshot, variantId);
  if (available !== undefined && quantity > available) {
    throw new AppError('INSUFFICIENT_STOCK', `only ${available} available, ${quantity} requested`, {
      available,
      lines: [{ variantId, requested: quantity, available }],
    });
  }
}

/** The descriptive fields of a line, as the catalog has them now. */
export function describe(
  variant: SellableVariant,
): Omit<LineFields, 'quantity' | 'unitPrice' | 'priceChangedFrom'> {
  return {
    variantId: variant.variantId,
    productId: variant.productId,
    sku: variant.sku,
    productTitle: variant.productTitle,
    variantTitle: variant.variantTitle,
    options: variant.options,
    image: variant.image,
  };
}

/**
 * A line checked against the snapshot: its problem, if any, and the changes to store. A new
 * price replaces the old one and the price the shopper saw is kept in priceChangedFrom (until
 * they touch the line); a price back to what they saw clears the flag.
 */
export function checkLine(
  line: LineRow,
  snapshot: Snapshot,
  currency: string | null,
): { problem: LineProblem | null; changes: Partial<LineFields> | null } {
  if (!snapshot.asked.has(line.variantId)) return { problem: null, changes: null };
  const variant = snapshot.variants.get(line.variantId);
  if (!variant) {
    return { problem: { code: 'VARIANT_NOT_FOUND', detail: 'this variant no longer exists' }, changes: null };
  }
  const described = describe(variant);
  let changes: Partial<LineFields> | null = sameDescription(line, described) ? null : { ...described };
  if (variant.productStatus !== 'active') {
    return {
      problem: { code: 'PRODUCT_NOT_AVAILABLE', detail: 'this product is no longer for sale' },
      changes,
    };
  }
  const price = currency === null ? undefined : variant.prices[currency];
  if (price === undefined) {
    return { problem: { code: 'PRICE_NOT_AVAILABLE', detail: `no price in ${currency}` }, changes };
  }
  if (price !== line.unitPrice) {
    const seen = line.priceChangedFrom ?? line.unitPrice;
    changes = { ...changes, unitPrice: price, priceChangedFrom: price === seen ? null : seen };
  }
  const available = sellable(snapshot, line.variantId);
  if (available !== undefined && line.quantity > available) {
    return {
      problem: { code: 'INSUFFICIENT_STOCK', detail: `only ${available} available`, available },
      changes,
    };
  }
  return { problem: null, changes };
}

const sorted = (options: Record<string, string>) => JSON.stringify(Object.entries(options).sort());

/** Whether the line still shows what the catalog says (titles, SKU, options, image). */
function sameDescription(line: LineRow, described: ReturnType<typeof describe>): boolean {
  return (
    line.productId === described.productId &&
    line.sku === described.sku &&
    line.productTitle === described.productTitle &&
    line.variantTitle === described.variantTitle &&
    line.image === described.image &&
    sorted(line.options) === sorted(described.options)
  );
}

/** Whether a problem takes the line out of the totals (it cannot be bought at all). */
export function isUnavailable(problem: LineProblem | null): boolean {
  return problem !== null && problem.code !== 'INSUFFICIENT_STOCK';
}
