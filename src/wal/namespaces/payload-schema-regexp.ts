import type { Ajv } from 'ajv';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import { RE2JS } from 're2js';
import { chargeSteps } from './payload-schema-budget.ts';

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

/** The most characters a payload schema pattern may have. */
export const MAX_PATTERN_LENGTH = 512;
/** The most a counted repetition (`{n}`, `{n,}`, `{n,m}`) in a payload schema pattern may count. */
export const MAX_PATTERN_REPEAT = 100;
/** The most RE2 instructions one pattern may compile to (`(a|aa|aaa|b){1000}` is 11,003). */
export const MAX_PATTERN_PROGRAM = 1_000;

// RE2 is linear in the input, but its factor is the size of the compiled program: matching N
// characters takes up to N × (instructions) steps (`(a|aa|aaa|b){1000}$` on 20,000 characters: 3.7 s).
// Each test is charged that, in units of this many steps, to the budget of the payload being
// checked (payload-schema-budget.ts) before it runs.
const STEPS_PER_UNIT = 128;

/** A RegExp-like object on RE2; `size` is its compiled program's number of instructions. */
export type LinearRegExp = { test(input: string): boolean; toString(): string; readonly size: number };

/**
 * The largest count of the pattern's counted repetitions (0 when it has none): `{n}`, `{n,}` and
 * `{n,m}` outside character classes and escapes, as RE2 reads them.
 */
export function largestRepeat(pattern: string): number {
  let largest = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      // \x{…}, \p{…}, \P{…}, \u{…}: the braces belong to the escape.
      if ('xpPu'.includes(pattern[i + 1] ?? '') && pattern[i + 2] === '{') {
        const end = pattern.indexOf('}', i + 3);
        i = end === -1 ? pattern.length : end;
      } else i += 1;
    } else if (inClass) {
      if (c === '[' && pattern[i + 1] === ':') {
        const end = pattern.indexOf(':]', i + 2);
        if (end !== -1) i = end + 1;
      } else if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i += 1;
      if (pattern[i + 1] === ']') i += 1;
    } else if (c === '{') {
      const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i, i + 24));
      if (repeat) {
        largest = Math.max(largest, Number(repeat[1]), Number(repeat[2] || 0));
        i += repeat[0].length - 1;
      }
    }
  }
  return largest;
}

/**
 * Why a payload schema pattern would cost too much to run (undefined when it is within bounds):
 * more than MAX_PATTERN_LENGTH characters, a repetition counting more than MAX_PATTERN_REPEAT,
 * or a program of more than MAX_PATTERN_PROGRAM instructions. `size` is its program's size.
 */
export function patternTooCostly(pattern: string, size: number): string | undefined {
  const quoted = JSON.stringify(pattern.length > 40 ? `${pattern.slice(0, 40)}…` : pattern);
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return `pattern ${quoted} is too long: at most ${MAX_PATTERN_LENGTH} characters (is ${pattern.length})`;
  }
  const repeat = largestRepeat(pattern);
  if (repeat > MAX_PATTERN_REPEAT) {
    return (
      `pattern ${quoted} repeats ${repeat} times: a counted repetition ({n}, {n,m}) may count at ` +
      `most ${MAX_PATTERN_REPEAT}`
    );
  }
  if (size > MAX_PATTERN_PROGRAM) {
    return (
      `pattern ${quoted} is too costly to run: it compiles to ${size} RE2 instructions, at most ` +
      `${MAX_PATTERN_PROGRAM} (nested repetitions multiply)`
    );
  }
  return undefined;
}

/**
 * Ajv's `code.regExp`: a RegExp-like object (`test`) on RE2JS, which matches in time linear in
 * the input whatever the pattern (no catastrophic backtracking). Each test is charged to the
 * payload's step budget in proportion to (program size × input length).
 */
export function linearRegExp(pattern: string, flags: string): LinearRegExp {
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
  const size: number = re.re2().prog.numInst();
  return {
    test: (input: string) => {
      chargeSteps(Math.ceil((size * input.length) / STEPS_PER_UNIT));
      return re.test(input);
    },
    toString: () => text,
    size,
  };
}
linearRegExp.code = 'linearRegExp';

/**
 * `format: "url"` without ajv-formats' regular expression, which takes time quadratic in the
 * string's length (a 20,000-character string: 1.5 s): the WHATWG URL parser, which is linear.
 * An absolute http, https or ftp URL with a host and no whitespace.
 */
function isUrl(value: string): boolean {
  if (/\s/.test(value)) return false;
  try {
    const url = new URL(value);
    return ['http:', 'https:', 'ftp:'].includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
}

/**
 * Puts the format checks a payload reaches on linear time: every ajv-formats regular expression
 * RE2 can run runs on RE2; `url` is parsed instead. `duration` and `hostname` keep theirs (their
 * lookaheads bound them: measured linear) and the other formats are functions.
 */
export function useLinearFormats(ajv: Ajv): void {
  for (const [name, format] of Object.entries(fullFormats)) {
    if (!(format instanceof RegExp)) continue;
    if (name === 'url') {
      ajv.addFormat(name, isUrl);
      continue;
    }
    let re: ReturnType<typeof linearRegExp>;
    try {
      re = linearRegExp(format.source, format.flags.replace('u', ''));
    } catch {
      continue;
    }
    ajv.addFormat(name, (value: string) => re.test(value));
  }
}
