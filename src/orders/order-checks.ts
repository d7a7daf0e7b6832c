import { AppError, type FieldError } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { NewOrder, NewOrderLine } from './order-view.ts';

/** Lines an order holds, and units of one line. */
export const MAX_LINES = 100;
export const MAX_QUANTITY = 1_000_000;

const CURRENCY = /^[A-Z]{3}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

const isAmount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isText = (value: unknown, max: number): value is string =>
  typeof value === 'string' && value.length >= 1 && value.length <= max;

/** What is wrong with one line, as field errors under /lines/i. */
function lineErrors(line: NewOrderLine, at: string, inclusive: boolean): FieldError[] {
  const errors: FieldError[] = [];
  const fail = (field: string, message: string) =>
    errors.push({ in: 'body', pointer: `${at}/${field}`, message });
  if (!isUuid(line.variantId)) fail('variantId', 'must be a UUID');
  if (!isUuid(line.productId)) fail('productId', 'must be a UUID');
  if (!isText(line.sku, 200)) fail('sku', 'must be 1 to 200 characters');
  if (typeof line.title !== 'string' || line.title.length > 500)
    fail('title', 'must be at most 500 characters');
  if (typeof line.variantTitle !== 'string' || line.variantTitle.length > 500)
    fail('variantTitle', 'must be at most 500 characters');
  if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_QUANTITY)
    fail('quantity', `must be an integer from 1 to ${MAX_QUANTITY}`);
  for (const field of ['unitPrice', 'tax', 'lineTotal'] as const) {
    if (!isAmount(line[field])) fail(field, 'must be a non-negative integer of minor units');
  }
  if (errors.length > 0) return errors;
  const subtotal = line.unitPrice * line.quantity;
  const expected = inclusive ? subtotal : subtotal + line.tax;
  if (line.lineTotal !== expected)
    fail('lineTotal', `must be unitPrice × quantity${inclusive ? '' : ' + tax'} (${expected})`);
  if (inclusive && line.tax > subtotal) fail('tax', 'cannot exceed the price that includes it');
  return errors;
}

/** What is wrong with the totals: each must add up from the lines as the cart computes them. */
function totalsErrors(input: NewOrder): FieldError[] {
  const { totals, lines } = input;
  const errors: FieldError[] = [];
  const fail = (field: string, message: string) =>
    errors.push({ in: 'body', pointer: `/totals/${field}`, message });
  for (const field of ['subtotal', 'discount', 'shipping', 'tax', 'total'] as const) {
    if (!isAmount(totals[field])) fail(field, 'must be a non-negative integer of minor units');
  }
  if (!Number.isInteger(totals.taxRateBps) || totals.taxRateBps < 0 || totals.taxRateBps > 10_000)
    fail('taxRateBps', 'must be an integer from 0 to 10000');
  if (typeof totals.pricesIncludeTax !== 'boolean') fail('pricesIncludeTax', 'must be a boolean');
  if (errors.length > 0) return errors;
  const subtotal = lines.reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);
  const tax = lines.reduce((sum, l) => sum + l.tax, 0);
  if (totals.subtotal !== subtotal) fail('subtotal', `must be the sum of the lines (${subtotal})`);
  if (totals.tax !== tax) fail('tax', `must be the sum of the lines' tax (${tax})`);
  if (totals.discount > totals.subtotal) fail('discount', 'cannot exceed the subtotal');
  const total =
    totals.subtotal - totals.discount + totals.shipping + (totals.pricesIncludeTax ? 0 : totals.tax);
  if (totals.total !== total)
    fail('total', `must be subtotal - discount + shipping (+ tax when exclusive): ${total}`);
  return errors;
}

/** Every field error of the order's own fields (not its lines or totals). */
function fieldErrors(input: NewOrder): FieldError[] {
  const errors: FieldError[] = [];
  const fail = (field: string, message: string) => errors.push({ in: 'body', pointer: `/${field}`, message });
  if (typeof input.currency !== 'string' || !CURRENCY.test(input.currency))
    fail('currency', 'must be an ISO 4217 code');
  if (input.id !== undefined && !isUuid(input.id)) fail('id', 'must be a UUID');
  if (input.customerId !== null && !isUuid(input.customerId)) fail('customerId', 'must be a UUID or null');
  if (input.cartId !== null && !isUuid(input.cartId)) fail('cartId', 'must be a UUID or null');
  if (input.email !== null && !isText(input.email, 320)) fail('email', 'must be 1 to 320 characters or null');
  if (input.guestTokenHash !== null && !SHA256_HEX.test(String(input.guestTokenHash)))
    fail('guestTokenHash', 'must be a SHA-256 in lower-case hex or null');
  if (!isText(input.idempotencyScope, 500)) fail('idempotencyScope', 'must be 1 to 500 characters');
  if (!isText(input.idempotencyKey, 255)) fail('idempotencyKey', 'must be 1 to 255 characters');
  if (!isText(input.requestHash, 200)) fail('requestHash', 'must be 1 to 200 characters');
  if (input.correlationId !== null && !isText(input.correlationId, 200))
    fail('correlationId', 'must be 1 to 200 characters or null');
  if (input.actor !== undefined && !isText(input.actor, 200)) fail('actor', 'must be 1 to 200 characters');
  const option = input.shippingOption;
  if (option !== null && (!isText(option.id, 200) || !isText(option.name, 200) || !isAmount(option.price)))
    fail('shippingOption', 'must be {id, name, price} with a non-negative integer price, or null');
  return errors;
}

/**
 * Refuses (400 VALIDATION_FAILED naming every failing field) an order whose fields are out of
 * range or whose amounts do not add up: the lines to the totals, as src/cart/totals.ts computes
 * them. The saga passes what the cart computed, so a refusal here is a bug caught before it is stored.
 */
export function checkNewOrder(input: NewOrder): void {
  const errors = fieldErrors(input);
  const lines = Array.isArray(input.lines) ? input.lines : [];
  const inclusive = input.totals?.pricesIncludeTax === true;
  const lineFailures =
    lines.length < 1 || lines.length > MAX_LINES
      ? [{ in: 'body' as const, pointer: '/lines', message: `must hold 1 to ${MAX_LINES} lines` }]
      : lines.flatMap((line, i) => lineErrors(line, `/lines/${i}`, inclusive));
  errors.push(...lineFailures);
  if (!input.totals) errors.push({ in: 'body', pointer: '/totals', message: 'is required' });
  // Totals are checked against lines that are themselves right, else one mistake is named thrice.
  else if (lineFailures.length === 0) errors.push(...totalsErrors(input));
  if (errors.length > 0) {
    throw new AppError('VALIDATION_FAILED', `order is invalid: ${errors[0]!.pointer} ${errors[0]!.message}`, {
      errors,
    });
  }
}
