import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { RE2JS } from 're2js';
import type { Namespace } from './namespace.ts';

/** The largest payload schema a namespace may have, in bytes of JSON. */
export const MAX_PAYLOAD_SCHEMA_BYTES = 65_536;

/** A pattern the linear-time engine cannot run (a backreference, a lookaround, …). */
export class UnsupportedPatternError extends Error {
  readonly pattern: string;
  constructor(pattern: string, reason: string) {
    super(
      `pattern ${JSON.stringify(pattern)} is not supported: ${reason} ` +
        '(payload schema patterns run on RE2: no backreferences or lookaround)',
    );
    this.pattern = pattern;
  }
}

const HEX = /^[0-9A-Fa-f]{4}$/;

/**
 * The pattern in RE2 syntax: ECMAScript's `\uXXXX` and `\u{X…}` escapes (surrogate pairs
 * joined) become `\x{…}`; everything else is passed on as written.
 */
export function toRe2Syntax(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c !== '\\' || i + 1 >= pattern.length) {
      out += c;
      continue;
    }
    const next = pattern[i + 1];
    if (next === 'u' && pattern[i + 2] === '{') {
      const end = pattern.indexOf('}', i + 3);
      if (end > i + 3) {
        out += `\\x{${pattern.slice(i + 3, end)}}`;
        i = end;
        continue;
      }
    }
    const hex = pattern.slice(i + 2, i + 6);
    if (next === 'u' && HEX.test(hex)) {
      let code = Number.parseInt(hex, 16);
      const low = pattern.slice(i + 8, i + 12);
      if (code >= 0xd800 && code <= 0xdbff && pattern.slice(i + 6, i + 8) === '\\u' && HEX.test(low)) {
        const lowCode = Number.parseInt(low, 16);
        if (lowCode >= 0xdc00 && lowCode <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (lowCode - 0xdc00);
          i += 6;
        }
      }
      out += `\\x{${code.toString(16)}}`;
      i += 5;
      continue;
    }
    out += c + next;
    i += 1;
  }
  return out;
}

/**
 * Ajv's `code.regExp`: a RegExp-like object (`test`) on RE2JS, which matches in time linear in
 * the input whatever the pattern (no catastrophic backtracking).
 */
function linearRegExp(pattern: string, flags: string): { test(input: string): boolean; toString(): string } {
  let mode = 0;
  if (flags.includes('i')) mode |= RE2JS.CASE_INSENSITIVE;
  if (flags.includes('m')) mode |= RE2JS.MULTILINE;
  if (flags.includes('s')) mode |= RE2JS.DOTALL;
  let re: RE2JS;
  try {
    re = RE2JS.compile(toRe2Syntax(pattern), mode);
  } catch (error) {
    throw new UnsupportedPatternError(pattern, (error as Error).message);
  }
  const text = `/${pattern}/${flags}`;
  return { test: (input: string) => re.test(input), toString: () => text };
}
linearRegExp.code = 'linearRegExp';

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
const COST_KEYWORD = 'x-mercato-cost';
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

function charge(_schema: unknown, data: unknown): boolean {
  if (budget.remaining === Number.POSITIVE_INFINITY) return true;
  budget.remaining -= sizeOf(data);
  if (budget.remaining < 0) throw new SchemaTooCostlyError();
  return true;
}

// Keywords whose values are data, not schemas.
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', '$vocabulary']);
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
function instrument(value: unknown, isMap = false): unknown {
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

// One Ajv per dialect for payload schemas: unknown keywords are allowed (vendor extensions), but a
// schema must itself be valid against its meta-schema and every $ref must resolve.
// Draft-07 unless the schema's $schema names 2019-09 or 2020-12.
const options: Options = { strict: false, allErrors: true, code: { regExp: linearRegExp } };
const draft07 = new Ajv(options);
const draft2019 = new Ajv2019(options);
const draft2020 = new Ajv2020(options);
for (const instance of [draft07, draft2019, draft2020]) {
  addFormats.default(instance);
  instance.removeKeyword('uniqueItems');
  instance.addKeyword({
    keyword: 'uniqueItems',
    type: 'array',
    schemaType: 'boolean',
    errors: true,
    validate: uniqueItems,
  });
  instance.addKeyword({ keyword: COST_KEYWORD, errors: false, validate: charge });
}
const ajvFor = (schema: Record<string, unknown>): Ajv => {
  const dialect = typeof schema['$schema'] === 'string' ? schema['$schema'] : '';
  if (dialect.includes('2020-12')) return draft2020;
  if (dialect.includes('2019-09')) return draft2019;
  return draft07;
};

/**
 * Compiles a payload schema; throws when it is not a valid schema (or has a pattern RE2 refuses).
 * Run payloads through budgeted(): the compiled function alone has no step budget.
 */
export function compilePayloadSchema(schema: Record<string, unknown>): ValidateFunction {
  const ajv = ajvFor(schema);
  try {
    return ajv.compile(instrument(schema) as Record<string, unknown>);
  } finally {
    // Ajv keeps every compiled schema by $id; drop it so redefining a namespace can reuse the id.
    if (typeof schema['$id'] === 'string') ajv.removeSchema(schema['$id']);
  }
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
      if (!(error instanceof SchemaTooCostlyError)) throw error;
      validate.errors = [
        { instancePath: '', schemaPath: '#', keyword: COST_KEYWORD, params: {}, message: error.message },
      ];
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

const escapePointer = (token: string) => token.replaceAll('~', '~0').replaceAll('/', '~1');

/** Every pattern of the schema (`pattern`, `patternProperties` keys) that RE2 refuses. */
function unsupportedPatterns(value: unknown, at: string, found: { pointer: string; message: string }[]) {
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) unsupportedPatterns(value[i], `${at}/${i}`, found);
    return;
  }
  const check = (pattern: string, pointer: string) => {
    try {
      linearRegExp(pattern, 'u');
    } catch (error) {
      found.push({ pointer, message: (error as Error).message });
    }
  };
  const object = value as Record<string, unknown>;
  if (typeof object['pattern'] === 'string') check(object['pattern'], `${at}/pattern`);
  const properties = object['patternProperties'];
  if (typeof properties === 'object' && properties !== null && !Array.isArray(properties)) {
    for (const key of Object.keys(properties)) check(key, `${at}/patternProperties/${escapePointer(key)}`);
  }
  for (const [key, child] of Object.entries(object)) {
    if (!DATA_KEYWORDS.has(key)) unsupportedPatterns(child, `${at}/${escapePointer(key)}`, found);
  }
}

/**
 * Checks a payload schema a tenant admin sent: at most 64 KiB of JSON, every pattern runnable on
 * RE2, valid. Returns the problems as (pointer under `at`, message) pairs; none when it is fine.
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
  const problems: { pointer: string; message: string }[] = [];
  unsupportedPatterns(schema, at, problems);
  if (problems.length > 0) return problems;
  try {
    compilePayloadSchema(schema);
    return [];
  } catch (error) {
    return [{ pointer: at, message: `is not a valid JSON Schema: ${(error as Error).message}` }];
  }
}

// Compiled validators by namespace and version (updatedAt): a namespace read anew from the database
// (a cache miss) still reuses its validator until the namespace changes; a write never compiles.
const validators = new Map<string, { version: string; validate?: ValidateFunction; error?: unknown }>();
const MAX_VALIDATORS = 10_000;

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
    if (cached.validate) return budgeted(cached.validate);
    throw cached.error;
  }
  // A schema stored before today's rules may not compile: remember that too, never retry per write.
  let entry: { version: string; validate?: ValidateFunction; error?: unknown };
  try {
    entry = { version: namespace.updatedAt, validate: compilePayloadSchema(schema) };
  } catch (error) {
    entry = { version: namespace.updatedAt, error };
  }
  validators.delete(key);
  if (validators.size >= MAX_VALIDATORS) validators.delete(validators.keys().next().value as string);
  validators.set(key, entry);
  if (!entry.validate) throw entry.error;
  return budgeted(entry.validate);
}
