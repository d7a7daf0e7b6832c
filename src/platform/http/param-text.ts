import { type AppError, validationFailed } from './errors.ts';

/** A whole number as a query string or path writes it: digits, an optional minus sign. */
const DECIMAL_INTEGER = /^-?\d+$/;

type Properties = Record<string, { type?: unknown; format?: unknown }>;

/**
 * What a route's query string, path or headers schema asks of their text beyond itself, worked
 * out once per route (the validator compiler), then run on each request before validation:
 *
 * - an integer must be decimal digits: TypeBox's conversion truncates whatever Number() reads,
 *   so `limit=1.5` was 1, `limit=0x10` 16 and `limit=1e1` 10, each answered as if asked for;
 *   anything else is 400 VALIDATION_FAILED naming the parameter, as `limit=abc` is;
 * - a uuid is written in lowercase, as PostgreSQL prints it: the format accepts capitals and
 *   PostgreSQL matches them, but code that compared or stored the id as text did not (an admin's
 *   own id in capitals passed the "not yourself" check). Every route sees one spelling.
 *
 * Undefined when the schema asks neither (most routes): nothing runs per request.
 */
export function paramTextRule(
  schema: unknown,
  part: 'query' | 'params' | 'headers',
): ((value: unknown) => AppError | undefined) | undefined {
  const properties = (schema as { properties?: Properties } | undefined)?.properties ?? {};
  const integers = Object.keys(properties).filter((name) => properties[name]!.type === 'integer');
  const uuids = Object.keys(properties).filter((name) => properties[name]!.format === 'uuid');
  if (integers.length === 0 && uuids.length === 0) return undefined;
  return (value) => {
    if (typeof value !== 'object' || value === null) return undefined;
    const record = value as Record<string, unknown>;
    for (const name of uuids) {
      const text = record[name];
      if (typeof text === 'string') record[name] = text.toLowerCase();
    }
    for (const name of integers) {
      const text = record[name];
      if (typeof text === 'string' && !DECIMAL_INTEGER.test(text)) {
        return validationFailed([{ in: part, pointer: `/${name}`, message: 'must be integer' }]);
      }
    }
    return undefined;
  };
}
