import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { AppError, type FieldError } from './errors.ts';
import { escapePointerToken } from './json-pointer.ts';

/** The deepest a request body may nest: objects and arrays, the outermost one counting 1. */
export const MAX_JSON_DEPTH = 64;

/** What the walk found wrong, in the order it looks: 0 when nothing. */
const NUL = 1;
const SURROGATE = 2;
const TOO_DEEP = 3;
const NON_FINITE = 4;
type Flaw = 0 | typeof NUL | typeof SURROGATE | typeof TOO_DEEP | typeof NON_FINITE;

function textFlaw(text: string): Flaw {
  if (text.includes('\u0000')) return NUL;
  return text.isWellFormed() ? 0 : SURROGATE;
}

function leafFlaw(value: unknown): Flaw {
  if (typeof value === 'string') return textFlaw(value);
  if (typeof value === 'number' && !Number.isFinite(value)) return NON_FINITE;
  return 0;
}

/**
 * One iterative walk (a body may nest 10,000 deep: no recursion) over a parsed JSON value: the
 * first string or key holding U+0000 (PostgreSQL text and jsonb cannot store it) or a lone UTF-16
 * surrogate (not valid Unicode: jsonb and UTF-8 refuse it), the first object or array deeper than
 * MAX_JSON_DEPTH, the first number JSON.parse overflowed to ±Infinity (JSON.stringify would write
 * null). With `pointers` false it only answers whether there is one (the fast path every request
 * takes); with true it also builds the JSON pointer of the one it finds, in the same order.
 */
function walk(root: unknown, pointers: boolean): { flaw: Flaw; pointer: string } {
  if (root === null || typeof root !== 'object') return { flaw: leafFlaw(root), pointer: '' };
  const stack: object[] = [root];
  const depths: number[] = [1];
  const paths: string[] = [''];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const depth = depths.pop()!;
    const path = paths.pop()!;
    if (depth > MAX_JSON_DEPTH) return { flaw: TOO_DEEP, pointer: path };
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) {
        const child: unknown = item[i];
        if (child !== null && typeof child === 'object') {
          stack.push(child);
          depths.push(depth + 1);
          paths.push(pointers ? `${path}/${i}` : '');
        } else {
          const flaw = leafFlaw(child);
          if (flaw !== 0) return { flaw, pointer: pointers ? `${path}/${i}` : '' };
        }
      }
    } else {
      for (const key in item) {
        const at = pointers ? `${path}/${escapePointerToken(key)}` : '';
        const keyFlaw = textFlaw(key);
        if (keyFlaw !== 0) return { flaw: keyFlaw, pointer: at };
        const child: unknown = (item as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') {
          stack.push(child);
          depths.push(depth + 1);
          paths.push(at);
        } else {
          const flaw = leafFlaw(child);
          if (flaw !== 0) return { flaw, pointer: at };
        }
      }
    }
  }
  return { flaw: 0, pointer: '' };
}

type Part = FieldError['in'];

function problemOf(flaw: Exclude<Flaw, 0>, part: Part, pointer: string): AppError {
  const field = (message: string) => ({ errors: [{ in: part, pointer, message }] });
  const where = pointer === '' ? `the ${part}` : `${part} ${pointer}`;
  switch (flaw) {
    case NUL:
      return new AppError(
        'VALIDATION_FAILED',
        '1 field(s) failed validation',
        field('must not contain U+0000'),
      );
    case SURROGATE:
      return new AppError(
        'INVALID_UNICODE',
        `${where} holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair), which is not text`,
        field('must not contain a lone UTF-16 surrogate'),
      );
    case TOO_DEEP:
      return new AppError(
        'JSON_TOO_DEEP',
        `${where} nests deeper than ${MAX_JSON_DEPTH} levels of objects and arrays`,
        field(`must not nest deeper than ${MAX_JSON_DEPTH} levels`),
      );
    case NON_FINITE:
      return new AppError(
        'NUMBER_OUT_OF_RANGE',
        `${where} is a number beyond ±1.7976931348623157e308, which would be stored as null`,
        field('must be a number a 64-bit float can hold'),
      );
  }
}

/**
 * The problem with a parsed JSON value (a body, a query string), or undefined when there is none:
 * 400 VALIDATION_FAILED (U+0000), INVALID_UNICODE, JSON_TOO_DEEP or NUMBER_OUT_OF_RANGE, naming
 * the field by its JSON pointer. Costs one walk when the value is fine.
 */
export function jsonProblem(value: unknown, part: Part = 'body'): AppError | undefined {
  if (walk(value, false).flaw === 0) return undefined;
  const { flaw, pointer } = walk(value, true);
  return flaw === 0 ? undefined : problemOf(flaw, part, pointer);
}

/** The byte offset of the first byte of bytes that does not begin or continue valid UTF-8. */
export function invalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const [length, min, max] =
      b >= 0xc2 && b <= 0xdf
        ? [2, 0x80, 0xbf]
        : b === 0xe0
          ? [3, 0xa0, 0xbf]
          : b === 0xed
            ? [3, 0x80, 0x9f] // ED A0..BF would encode a surrogate
            : b >= 0xe1 && b <= 0xef
              ? [3, 0x80, 0xbf]
              : b === 0xf0
                ? [4, 0x90, 0xbf]
                : b >= 0xf1 && b <= 0xf3
                  ? [4, 0x80, 0xbf]
                  : b === 0xf4
                    ? [4, 0x80, 0x8f]
                    : [0, 0, 0];
    if (length === 0 || i + length > bytes.length) return i;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k]!;
      if (k === 1 ? c < min || c > max : c < 0x80 || c > 0xbf) return i;
    }
    i += length;
  }
  return -1;
}

/** The charsets a JSON body may declare (RFC 8259: JSON is UTF-8; US-ASCII is a subset of it). */
const JSON_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/** The charset parameter of a Content-Type header, lower-cased (undefined when there is none). */
export function charsetOf(contentType: string | undefined): string | undefined {
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType ?? '');
  return match ? (match[1] ?? match[2] ?? '').toLowerCase() : undefined;
}

/**
 * Replaces Fastify's application/json parser by the same parser (secure-json-parse: __proto__ and
 * constructor.prototype keys refused) behind three checks: a declared charset must be UTF-8 (or
 * US-ASCII): a body in another one (`charset=utf-16`) answers 415 UNSUPPORTED_MEDIA_TYPE instead
 * of being read as UTF-8; the body must be valid UTF-8 (decoding would otherwise turn a raw lone
 * surrogate or any stray byte into U+FFFD silently); and the parsed value must pass jsonProblem.
 * Every JSON body is checked, whatever its route.
 */
export function registerJsonGuard(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const charset = charsetOf(request.headers['content-type']);
    if (charset !== undefined && !JSON_CHARSETS.has(charset)) {
      done(
        new AppError(
          'UNSUPPORTED_MEDIA_TYPE',
          `a JSON body must be UTF-8; charset ${JSON.stringify(charset)} is not supported`,
        ),
        undefined,
      );
      return;
    }
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      const offset = invalidUtf8Offset(bytes);
      const message = `must be valid UTF-8 (byte ${offset} is not)`;
      done(
        new AppError('INVALID_UNICODE', `the body is not valid UTF-8 at byte ${offset}`, {
          errors: [{ in: 'body', pointer: '', message }],
        }),
        undefined,
      );
      return;
    }
    parse(request, bytes.toString('utf8'), (error, value) => {
      if (error) return done(error, undefined);
      const problem = jsonProblem(value);
      if (problem) return done(problem, undefined);
      done(null, value);
    });
  });
}
