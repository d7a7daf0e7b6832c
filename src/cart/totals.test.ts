import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeTotals, divideHalfEven, lineTax, type TotalsInput } from './totals.ts';

const RUNS = {
  numRuns: Number(process.env['FC_RUNS'] ?? 300),
  ...(process.env['FC_SEED'] ? { seed: Number(process.env['FC_SEED']) } : {}),
};

const line = fc.record({
  id: fc.uuid(),
  unitPrice: fc.integer({ min: 0, max: 100_000_000 }),
  quantity: fc.integer({ min: 1, max: 1000 }),
});
const lines = fc.uniqueArray(line, { maxLength: 100, selector: (l) => l.id });
const cart: fc.Arbitrary<TotalsInput> = fc.record({
  lines,
  taxRateBps: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 10_000 })),
  pricesIncludeTax: fc.boolean(),
  shipping: fc.integer({ min: 0, max: 1_000_000 }),
});

describe('cart totals', () => {
  it('equal the sum of their lines', () => {
    fc.assert(
      fc.property(cart, (input) => {
        const totals = computeTotals(input);
        const perLine = Object.values(totals.lines);
        expect(perLine).toHaveLength(input.lines.length);
        expect(totals.subtotal).toBe(perLine.reduce((sum, l) => sum + l.subtotal, 0));
        expect(totals.tax).toBe(perLine.reduce((sum, l) => sum + l.tax, 0));
        const linesTotal = perLine.reduce((sum, l) => sum + l.total, 0);
        expect(totals.total).toBe(linesTotal + totals.shipping - totals.discount);
        for (const l of input.lines) expect(totals.lines[l.id]!.subtotal).toBe(l.unitPrice * l.quantity);
      }),
      RUNS,
    );
  });

  it('are never negative, and every amount is an integer', () => {
    fc.assert(
      fc.property(cart, fc.integer({ min: -1000, max: 10_000_000_000 }), (input, discount) => {
        const totals = computeTotals({ ...input, discount });
        for (const amount of [totals.subtotal, totals.discount, totals.shipping, totals.tax, totals.total]) {
          expect(Number.isSafeInteger(amount)).toBe(true);
          expect(amount).toBeGreaterThanOrEqual(0);
        }
        expect(totals.total).toBeGreaterThanOrEqual(totals.shipping);
      }),
      RUNS,
    );
  });

  it('are stable: the same cart gives the same totals, whatever the order of its lines', () => {
    fc.assert(
      fc.property(
        cart.chain((input) =>
          fc.tuple(
            fc.constant(input),
            fc.shuffledSubarray([...input.lines], {
              minLength: input.lines.length,
              maxLength: input.lines.length,
            }),
          ),
        ),
        ([input, shuffled]) => {
          const first = computeTotals(input);
          expect(computeTotals(input)).toEqual(first);
          expect(computeTotals({ ...input, lines: shuffled })).toEqual(first);
        },
      ),
      RUNS,
    );
  });

  it('inclusive and exclusive agree: the gross price of an exclusive line, read as inclusive, carries the same tax within one minor unit', () => {
    fc.assert(
      fc.property(line, fc.integer({ min: 0, max: 10_000 }), (l, rate) => {
        const exclusive = computeTotals({
          lines: [l],
          taxRateBps: rate,
          pricesIncludeTax: false,
          shipping: 0,
        });
        const gross = exclusive.total;
        const inclusive = computeTotals({
          lines: [{ id: l.id, unitPrice: gross, quantity: 1 }],
          taxRateBps: rate,
          pricesIncludeTax: true,
          shipping: 0,
        });
        expect(inclusive.total).toBe(gross);
        expect(Math.abs(inclusive.tax - exclusive.tax)).toBeLessThanOrEqual(1);
        expect(inclusive.tax).toBeLessThanOrEqual(gross);
      }),
      RUNS,
    );
  });

  it('inclusive prices never add tax to the total; exclusive ones add exactly the tax', () => {
    fc.assert(
      fc.property(cart, (input) => {
        const inclusive = computeTotals({ ...input, pricesIncludeTax: true });
        const exclusive = computeTotals({ ...input, pricesIncludeTax: false });
        expect(inclusive.total).toBe(inclusive.subtotal + inclusive.shipping);
        expect(exclusive.total).toBe(exclusive.subtotal + exclusive.shipping + exclusive.tax);
        expect(inclusive.tax).toBeLessThanOrEqual(exclusive.tax);
      }),
      RUNS,
    );
  });

  it('throw CART_TOTAL_TOO_LARGE past 2^53 − 1 minor units, and are exact up to it', () => {
    const big = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ id: `l${i}`, unitPrice: 1_000_000_000_000, quantity: 1000 }));
    const fits = computeTotals({ lines: big(9), taxRateBps: 0, pricesIncludeTax: false, shipping: 0 });
    expect(fits.total).toBe(9_000_000_000_000_000);
    for (const input of [
      { lines: big(10), taxRateBps: 0, pricesIncludeTax: false, shipping: 0 },
      // the lines fit; their exclusive tax does not
      { lines: big(9), taxRateBps: 100, pricesIncludeTax: false, shipping: 0 },
      // the lines fit; the shipping on top does not
      { lines: big(9), taxRateBps: 0, pricesIncludeTax: false, shipping: 7_199_254_740_992 },
    ]) {
      expect(() => computeTotals(input)).toThrow(expect.objectContaining({ code: 'CART_TOTAL_TOO_LARGE' }));
    }
  });

  it('rounds half to even, per line', () => {
    expect(divideHalfEven(25n, 10n)).toBe(2n);
    expect(divideHalfEven(35n, 10n)).toBe(4n);
    expect(divideHalfEven(26n, 10n)).toBe(3n);
    expect(divideHalfEven(24n, 10n)).toBe(2n);
    expect(lineTax(125, 2000, false)).toBe(25);
    expect(lineTax(25, 1000, false)).toBe(2);
    expect(lineTax(35, 1000, false)).toBe(4);
    // 12.00 with 20 % included holds 2.00 of tax.
    expect(lineTax(1200, 2000, true)).toBe(200);
    // Two lines of 0.05 at 10 %: 0 + 0 per line, not round(0.01) on the sum.
    const totals = computeTotals({
      lines: [
        { id: 'a', unitPrice: 5, quantity: 1 },
        { id: 'b', unitPrice: 5, quantity: 1 },
      ],
      taxRateBps: 1000,
      pricesIncludeTax: false,
      shipping: 0,
    });
    expect(totals.tax).toBe(0);
  });

  it('does not lose precision on large carts (beyond 2^53 in the intermediate product)', () => {
    const big = 100_000_000 * 1000;
    expect(lineTax(big, 9999, false)).toBe(Number(divideHalfEven(BigInt(big) * 9999n, 10_000n)));
    expect(lineTax(big, 9999, false)).toBe(99_990_000_000);
  });
});
