import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { escapePointerToken } from '../../platform/http/index.ts';
import type { Namespace } from './namespace.ts';
import { budgeted, COST_KEYWORD, charge, DATA_KEYWORDS, instrument } from './payload-schema-budget.ts';
import { linearRegExp, patternTooCostly, useLinearFormats } from './payload-schema-regexp.ts';

export { budgeted, SchemaTooCostlyError } from './payload-schema-budget.ts';
export {
  MAX_PATTERN_LENGTH,
  MAX_PATTERN_PROGRAM,
  MAX_PATTERN_REPEAT,
  toRe2Syntax,
  UnsupportedPatternError,
} from './payload-schema-regexp.ts';

/** The largest payload schema a namespace may have, in bytes of JSON. */
export const MAX_PAYLOAD_SCHEMA_BYTES = 65_536;
/** The most RE2 instructions all the patterns of one payload schema may compile to together. */
export const MAX_SCHEMA_PATTERN_PROGRAM = 20_000;
/**
 * A failing payload up to this size (in nodes, a string one per 16 characters) has every error
 * listed; a larger one its first. Listing every error keeps one object per failing value: an array
 * of a million wrong items made a million errors (170 MB, and as many in the 422).
 */
export const LIST_ALL_ERRORS_UNITS = 1024;
/** The most schema errors the payloads of one request list together (the rest are not looked for). */
export const MAX_LISTED_ERRORS = 100;

/** A key for deep equality of JSON values: object keys sorted at every level. */
function equalityKey(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(equalityKey).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${equalityKey((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

// Ajv's uniqueItems compares items of objects pairwise (quadratic in the array's length); this one
// keys each item once, so an array of 100,000 objects costs one pass.
function uniqueItems(this: unknown, schema: boolean, data: unknown[]): boolean {
  const self = uniqueItems as unknown as { errors?: unknown[] };
  self.errors = [];
  if (!schema) return true;
  const seen = new Map<string, number>();
  for (let j = 0; j < data.length; j++) {
    const key = equalityKey(data[j]);
    const i = seen.get(key);
    if (i !== undefined) {
      self.errors = [
        {
          keyword: 'uniqueItems',
          message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)`,
          params: { i, j },
        },
      ];
      return false;
    }
    seen.set(key, j);
  }
  return true;
}

// One Ajv per dialect for payload schemas: unknown keywords are allowed (vendor extensions), but a
// schema must itself be valid against its meta-schema and every $ref must resolve.
// Draft-07 unless the schema's $schema names 2019-09 or 2020-12.
const options = (allErrors: boolean): Options => ({
  strict: false,
  allErrors,
  code: { regExp: linearRegExp },
});
type Dialect = 'draft07' | 'draft2019' | 'draft2020';
const DIALECTS: Record<Dialect, new (options: Options) => Ajv> = {
  draft07: Ajv,
  draft2019: Ajv2019,
  draft2020: Ajv2020,
};

function createAjv(dialect: Dialect, allErrors: boolean): Ajv {
  const instance = new DIALECTS[dialect](options(allErrors));
  addFormats.default(instance);
  useLinearFormats(instance);
  instance.removeKeyword('uniqueItems');
  instance.addKeyword({
    keyword: 'uniqueItems',
    type: 'array',
    schemaType: 'boolean',
    errors: true,
    validate: uniqueItems,
  });
  instance.addKeyword({ keyword: COST_KEYWORD, errors: false, validate: charge });
  return instance;
}

// An Ajv instance keeps something of every schema it compiles (its code scope grows, removeSchema
// or not): each is replaced after this many compiles, so tenants re-sending schemas cannot grow
// the process without bound (a fresh instance costs about 13 ms).
const COMPILES_PER_INSTANCE = 32;
const instances = new Map<string, { ajv: Ajv; compiles: number }>();

const ajvFor = (schema: Record<string, unknown>, allErrors: boolean): Ajv => {
  const declared = typeof schema['$schema'] === 'string' ? schema['$schema'] : '';
  const dialect: Dialect = declared.includes('2020-12')
    ? 'draft2020'
    : declared.includes('2019-09')
      ? 'draft2019'
      : 'draft07';
  const key = `${dialect}/${allErrors}`;
  let entry = instances.get(key);
  if (!entry || entry.compiles >= COMPILES_PER_INSTANCE) {
    entry = { ajv: createAjv(dialect, allErrors), compiles: 0 };
    instances.set(key, entry);
  }
  entry.compiles += 1;
  return entry.ajv;
};

/**
 * Compiles a payload schema; throws when it is not a valid schema (or has a pattern RE2 refuses).
 * Run payloads through budgeted(): the compiled function alone has no step budget. allErrors
 * false: the function stops at the first error.
 */
export function compilePayloadSchema(schema: Record<string, unknown>, allErrors = true): ValidateFunction {
  const ajv = ajvFor(schema, allErrors);
  const instrumented = instrument(schema) as Record<string, unknown>;
  try {
    const validate = ajv.compile(instrumented);
    // `$async: true` at the root compiles to a function answering a promise: every payload would
    // pass (a promise is truthy) and a failing one would reject with nobody to catch it.
    if ((validate as { $async?: boolean }).$async === true)
      throw new Error('$async is not supported: payloads are checked as they are written');
    return validate;
  } finally {
    // Ajv keeps every schema it compiles (by object, and by its normalized $id) in instances shared
    // by all tenants: drop it, or each compile leaks and a tenant's $id is refused to every other.
    ajv.removeSchema(instrumented);
  }
}

type PatternCheck = { pointer: string; message: string }[] & { program?: number };

/**
 * Every pattern of the schema (`pattern`, `patternProperties` keys) that RE2 refuses or that would
 * cost too much to run (see patternTooCostly); `found.program` sums the sizes of their programs.
 */
function unsupportedPatterns(value: unknown, at: string, found: PatternCheck) {
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) unsupportedPatterns(value[i], `${at}/${i}`, found);
    return;
  }
  const check = (pattern: string, pointer: string) => {
    try {
      const { size } = linearRegExp(pattern, 'u');
      found.program = (found.program ?? 0) + size;
      const costly = patternTooCostly(pattern, size);
      if (costly) found.push({ pointer, message: costly });
    } catch (error) {
      found.push({ pointer, message: (error as Error).message });
    }
  };
  const object = value as Record<string, unknown>;
  if (typeof object['pattern'] === 'string') check(object['pattern'], `${at}/pattern`);
  const properties = object['patternProperties'];
  if (typeof properties === 'object' && properties !== null && !Array.isArray(properties)) {
    for (const key of Object.keys(properties))
      check(key, `${at}/patternProperties/${escapePointerToken(key)}`);
  }
  for (const [key, child] of Object.entries(object)) {
    if (!DATA_KEYWORDS.has(key)) unsupportedPatterns(child, `${at}/${escapePointerToken(key)}`, found);
  }
}

/**
 * Checks a payload schema a tenant admin sent: at most 64 KiB of JSON, every pattern runnable on
 * RE2 and within the bounds of patternTooCostly, all patterns together at most
 * MAX_SCHEMA_PATTERN_PROGRAM instructions, valid. Returns the problems as (pointer under `at`, message) pairs; none when it is fine.
 */
export function checkPayloadSchema(
  schema: Record<string, unknown>,
  at = '/payloadSchema',
): { pointer: string; message: string }[] {
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > MAX_PAYLOAD_SCHEMA_BYTES) {
    return [
      { pointer: at, message: `must be at most ${MAX_PAYLOAD_SCHEMA_BYTES} bytes of JSON (is ${bytes})` },
    ];
  }
  const problems: PatternCheck = [];
  unsupportedPatterns(schema, at, problems);
  if (problems.length > 0) return [...problems];
  if ((problems.program ?? 0) > MAX_SCHEMA_PATTERN_PROGRAM) {
    const message =
      `its patterns compile to ${problems.program} RE2 instructions together, at most ` +
      `${MAX_SCHEMA_PATTERN_PROGRAM}`;
    return [{ pointer: at, message }];
  }
  try {
    compilePayloadSchema(schema);
    return [];
  } catch (error) {
    return [{ pointer: at, message: `is not a valid JSON Schema: ${(error as Error).message}` }];
  }
}

// Compiled validators by namespace and version (updatedAt): a namespace read anew from the database
// (a cache miss) still reuses its validator until the namespace changes; a write never compiles.
// `validate` stops at the first error; `all`, compiled when a small payload first fails, lists them.
type Compiled = { version: string; validate?: ValidateFunction; all?: ValidateFunction; error?: unknown };
const validators = new Map<string, Compiled>();
const MAX_VALIDATORS = 10_000;

/** True when the value has at most `units` nodes (a string one per 16 characters); stops early. */
function smallerThan(value: unknown, units: number): boolean {
  let left = units;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    left -= typeof item === 'string' ? 1 + (item.length >> 4) : 1;
    if (left < 0) return false;
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length && i <= left; i++) stack.push(item[i]);
      if (item.length > left) return false;
    } else if (typeof item === 'object' && item !== null) {
      for (const key in item) {
        left -= 1 + (key.length >> 4);
        if (left < 0) return false;
        stack.push((item as Record<string, unknown>)[key]);
      }
    }
  }
  return true;
}

/**
 * One request's validator: the first error of any payload, and every error of a payload of at
 * most LIST_ALL_ERRORS_UNITS while the request has listed fewer than MAX_LISTED_ERRORS; each pass
 * with its own step budget.
 */
function listing(compiled: Compiled, schema: Record<string, unknown>): ValidateFunction {
  const first = budgeted(compiled.validate!);
  let all: ValidateFunction | undefined;
  let listed = 0;
  const validate = ((data: unknown) => {
    if (first(data)) {
      validate.errors = null;
      return true;
    }
    validate.errors = first.errors;
    if (listed < MAX_LISTED_ERRORS && smallerThan(data, LIST_ALL_ERRORS_UNITS)) {
      try {
        compiled.all ??= compilePayloadSchema(schema, true);
        all ??= budgeted(compiled.all);
        if (!all(data)) validate.errors = all.errors;
      } catch {
        // Compiled once already: keep the first error.
      }
    }
    listed += validate.errors?.length ?? 0;
    return false;
  }) as ValidateFunction;
  validate.schema = first.schema;
  return validate;
}

/**
 * A validator of a namespace's payload schema for one request's payloads (undefined when it has
 * none), with its own step budget; the schema is compiled once per namespace version.
 */
export function namespaceValidator(namespace: Namespace): ValidateFunction | undefined {
  const schema = namespace.payloadSchema;
  if (!schema) return undefined;
  const key = `${namespace.tenantId}/${namespace.name}`;
  const cached = validators.get(key);
  if (cached?.version === namespace.updatedAt) {
    if (cached.validate) return listing(cached, schema);
    throw cached.error;
  }
  // A schema stored before today's rules may not compile: remember that too, never retry per write.
  let entry: Compiled;
  try {
    entry = { version: namespace.updatedAt, validate: compilePayloadSchema(schema, false) };
  } catch (error) {
    entry = { version: namespace.updatedAt, error };
  }
  validators.delete(key);
  if (validators.size >= MAX_VALIDATORS) validators.delete(validators.keys().next().value as string);
  validators.set(key, entry);
  if (!entry.validate) throw entry.error;
  return listing(entry, schema);
}
