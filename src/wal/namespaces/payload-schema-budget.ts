import type { ValidateFunction } from 'ajv';

/** A payload whose check against the schema would cost more than its budget (see COST_KEYWORD). */
export class SchemaTooCostlyError extends Error {
  constructor() {
    super(
      'checking this payload against the schema takes too many steps (the schema applies ' +
        'subschemas to the same values over and over); simplify the schema',
    );
  }
}

// Every schema object is given this keyword before compiling: each time a subschema is applied to a
// value, the value's size is charged against a budget set per write (linear in the payload's size).
// A schema whose subschemas fan out (anyOf of two $refs, nested 30 times, is 2^30 applications)
// is stopped after milliseconds instead of running for hours.
export const COST_KEYWORD = 'x-mercato-cost';
const BUDGET_BASE = 50_000;
const BUDGET_PER_UNIT = 16;
const budget = { remaining: Number.POSITIVE_INFINITY, sizes: new WeakMap<object, number>() };

/** The size of a JSON value: its nodes, strings counted per 16 characters (cached per object). */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return 1 + (value.length >> 4);
  if (typeof value !== 'object' || value === null) return 1;
  const known = budget.sizes.get(value);
  if (known !== undefined) return known;
  let size = 1;
  if (Array.isArray(value)) for (const item of value) size += sizeOf(item);
  else {
    for (const [key, item] of Object.entries(value)) size += 1 + (key.length >> 4) + sizeOf(item);
  }
  budget.sizes.set(value, size);
  return size;
}

export function charge(_schema: unknown, data: unknown): boolean {
  if (budget.remaining === Number.POSITIVE_INFINITY) return true;
  budget.remaining -= sizeOf(data);
  if (budget.remaining < 0) throw new SchemaTooCostlyError();
  return true;
}

/**
 * Charges `steps` to the budget of the payload being checked (nothing outside budgeted()); throws
 * SchemaTooCostlyError, before the work is done, when they are more than what is left.
 */
export function chargeSteps(steps: number): void {
  if (budget.remaining === Number.POSITIVE_INFINITY) return;
  budget.remaining -= steps;
  if (budget.remaining < 0) throw new SchemaTooCostlyError();
}

// Keywords whose values are data, not schemas.
export const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', '$vocabulary']);
// Keywords whose values are maps of name to schema: the map itself is no schema.
const MAP_KEYWORDS = new Set([
  'properties',
  'patternProperties',
  '$defs',
  'definitions',
  'dependentSchemas',
  'dependencies',
]);

/** A copy of the schema with COST_KEYWORD in every object that may be a schema. */
export function instrument(value: unknown, isMap = false): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => instrument(item));
  const copy: Record<string, unknown> = isMap ? {} : { [COST_KEYWORD]: true };
  for (const [key, child] of Object.entries(value)) {
    if (isMap) copy[key] = instrument(child);
    else if (DATA_KEYWORDS.has(key) || key === COST_KEYWORD) copy[key] = child;
    else copy[key] = instrument(child, MAP_KEYWORDS.has(key));
  }
  return copy;
}

/**
 * A validator for the payloads of one request, sharing one step budget: 50,000 plus 16 per unit
 * of each payload's size. A payload checked after the budget ran out fails with one error at its
 * root instead of running on.
 */
export function budgeted(compiled: ValidateFunction): ValidateFunction {
  let remaining = BUDGET_BASE;
  const validate = ((data: unknown) => {
    budget.sizes = new WeakMap();
    budget.remaining = remaining + BUDGET_PER_UNIT * sizeOf(data);
    try {
      const valid = compiled(data) as boolean;
      validate.errors = compiled.errors;
      return valid;
    } catch (error) {
      // A schema that applies itself to the same value without end (`{"$ref": "#"}`) overflows the
      // stack before it spends its budget: as costly, not a 500 on every write.
      if (!(error instanceof SchemaTooCostlyError || error instanceof RangeError)) throw error;
      const message =
        error instanceof SchemaTooCostlyError ? error.message : new SchemaTooCostlyError().message;
      validate.errors = [{ instancePath: '', schemaPath: '#', keyword: COST_KEYWORD, params: {}, message }];
      return false;
    } finally {
      remaining = Math.max(budget.remaining, 0);
      budget.remaining = Number.POSITIVE_INFINITY;
      budget.sizes = new WeakMap();
    }
  }) as ValidateFunction;
  validate.schema = compiled.schema;
  return validate;
}
