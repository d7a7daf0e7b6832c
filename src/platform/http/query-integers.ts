import { AppError } from './errors.ts';

/** A whole number as a query string or path writes it: digits, an optional minus sign. */
const DECIMAL_INTEGER = /^-?\d+$/;

/**
 * The problem with a query string's or path's text where its schema wants an integer, or
 * undefined: TypeBox's conversion (which runs before the check) truncates whatever Number() reads,
 * so `limit=1.5` was 1, `limit=0x10` 16 and `limit=1e1` 10, each answered as if asked for. Only
 * decimal digits convert; anything else is 400 VALIDATION_FAILED naming the parameter, as
 * `limit=abc` is.
 */
export function looseIntegerProblem(
  schema: unknown,
  value: unknown,
  part: 'query' | 'params' | 'headers',
): AppError | undefined {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
  if (!properties || typeof value !== 'object' || value === null) return undefined;
  for (const [name, property] of Object.entries(properties)) {
    const text = (value as Record<string, unknown>)[name];
    if (property.type === 'integer' && typeof text === 'string' && !DECIMAL_INTEGER.test(text)) {
      return new AppError('VALIDATION_FAILED', '1 field(s) failed validation', {
        errors: [{ in: part, pointer: `/${name}`, message: 'must be integer' }],
      });
    }
  }
  return undefined;
}
