import { AppError } from '../platform/http/index.ts';

/**
 * Cart totals as a pure function of the lines, the tax rate and the shipping price, in integer
 * minor units of the cart's currency.
 *
 * Rounding: tax is computed per line (and never on the cart sum), rounding half to even
 * (banker's rounding) on exact integer arithmetic:
 * - prices without tax (exclusive): line tax = round(subtotal × rate / 10000)
 * - prices with tax (inclusive):    line tax = round(subtotal × rate / (10000 + rate)), the tax
 *   contained in the price; the total does not add it again.
 * The cart's tax is the sum of its lines' tax, so the lines always add up to the cart, and the
 * result does not depend on the order of the lines. Shipping is not taxed; the discount (none
 * yet) is taken from the subtotal and never makes the total negative.
 */

export type TotalsLine = { id: string; unitPrice: number; quantity: number };

export type TotalsInput = {
  lines: readonly TotalsLine[];
  /** Basis points: 2000 = 20 %. 0 when no rate applies (or no shipping address is known yet). */
  taxRateBps: number;
  pricesIncludeTax: boolean;
  /** The chosen shipping option's price, 0 when none. */
  shipping: number;
  /** Discounts; none exist yet, the field is there for them. */
  discount?: number;
};

export type LineTotals = { subtotal: number; tax: number; total: number };

export type Totals = {
  /** Sum of unit price × quantity over the lines, as the prices are (with tax when inclusive). */
  subtotal: number;
  discount: number;
  shipping: number;
  /** Sum of the lines' tax; contained in the subtotal when prices include tax. */
  tax: number;
  total: number;
  lines: Record<string, LineTotals>;
};

/** round(numerator / denominator) half to even, for a non-negative numerator and positive denominator. */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  const quotient = numerator / denominator;
  const twiceRemainder = (numerator % denominator) * 2n;
  if (twiceRemainder > denominator) return quotient + 1n;
  if (twiceRemainder < denominator) return quotient;
  return quotient % 2n === 0n ? quotient : quotient + 1n;
}

/** The tax of one line's subtotal at rateBps, exclusive or inclusive of tax. */
export function lineTax(subtotal: number, rateBps: number, inclusive: boolean): number {
  if (subtotal <= 0 || rateBps <= 0) return 0;
  const amount = BigInt(subtotal) * BigInt(rateBps);
  return Number(divideHalfEven(amount, inclusive ? 10_000n + BigInt(rateBps) : 10_000n));
}

/**
 * The totals of a cart; see the module comment for the rounding rule. Every amount is exact: one
 * line is at most 10^12 × 1,000, but 100 of them with shipping and tax could pass 2^53 − 1, where
 * JSON numbers stop being exact, so such a cart throws 409 CART_TOTAL_TOO_LARGE (the change that
 * made it is refused; a cart repriced past it answers that until a line is lowered).
 */
export function computeTotals(input: TotalsInput): Totals {
  const inclusive = input.pricesIncludeTax;
  const lines: Record<string, LineTotals> = {};
  let subtotal = 0;
  let tax = 0;
  for (const line of input.lines) {
    const lineSubtotal = line.unitPrice * line.quantity;
    const lineTaxAmount = lineTax(lineSubtotal, input.taxRateBps, inclusive);
    lines[line.id] = {
      subtotal: lineSubtotal,
      tax: lineTaxAmount,
      total: inclusive ? lineSubtotal : lineSubtotal + lineTaxAmount,
    };
    subtotal += lineSubtotal;
    tax += lineTaxAmount;
  }
  const discount = Math.min(Math.max(input.discount ?? 0, 0), subtotal);
  const shipping = Math.max(input.shipping, 0);
  const total = subtotal - discount + shipping + (inclusive ? 0 : tax);
  // Sums of non-negative safe integers: once the exact sum passes 2^53 − 1 the float sum does too.
  if (!Number.isSafeInteger(total) || !Number.isSafeInteger(subtotal) || !Number.isSafeInteger(tax)) {
    throw new AppError(
      'CART_TOTAL_TOO_LARGE',
      `the cart's total would exceed ${Number.MAX_SAFE_INTEGER} minor units; lower a quantity or remove a line`,
      { limit: Number.MAX_SAFE_INTEGER },
    );
  }
  return { subtotal, discount, shipping, tax, total, lines };
}
