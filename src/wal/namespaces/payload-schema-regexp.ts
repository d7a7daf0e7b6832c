import type { Ajv } from 'ajv';
import { fullFormats } from 'ajv-formats/dist/formats.js';
import { RE2JS } from 're2js';

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
export function linearRegExp(
  pattern: string,
  flags: string,
): { test(input: string): boolean; toString(): string } {
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
