/**
 * How much text an exception's payload puts in its search vector, bounded from above. The
 * vector (migration 0037) holds every string and number of the payload, and PostgreSQL refuses a
 * tsvector past 1 MiB of lexemes ("string is too long for tsvector"): the capture's whole
 * statement fails, so the exception is never captured, and the same payload fails every retry.
 * A payload can pass that limit at far less than its own size: a number is indexed as numeric
 * text, so `1e300` (5 bytes) is a 301-digit lexeme, and 4,000 such numbers (36 KB of JSON) make
 * 1.2 MB; the parser also indexes a hyphenated word or a URL whole and in parts (up to twice
 * its length), and lower-casing may lengthen a non-ASCII character by half. The limit counts
 * each lexeme's positions too (a padding byte, a count and 2 bytes per position, at most 256
 * positions a lexeme), so 140,000 distinct four-letter words (700 KB of JSON, 560 KB of text)
 * make 1.1 MB: each word, each part of one and each repeat is charged for them.
 */

/** The payload's share of the vector: the 1 MiB limit less room for the ids and the reason (4,000 characters). */
export const MAX_SEARCHABLE_BYTES = 960_000;

const SPLITS = /[-./@:_+~#%&=?,;!*'"()[\]{}<>|\\^`$]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII is 0x00-0x7f
const NON_ASCII = /[^\x00-\x7f]/;

/** The characters PostgreSQL writes for a JSON number: numeric text, exponents spelled out. */
function numericLength(value: number): number {
  const text = String(Math.abs(value));
  const sign = value < 0 ? 1 : 0;
  const e = text.indexOf('e');
  if (e === -1) return sign + text.length;
  const digits = text.slice(0, e).replace('.', '').length;
  const exponent = Math.abs(Number(text.slice(e + 1)));
  // 1e+300: the digits then the zeros; 1e-300: "0." then the zeros then the digits.
  return sign + digits + exponent + 2;
}

/** What one word may become in the vector, at most (see above). */
function wordBytes(word: string): number {
  const bytes = Buffer.byteLength(word);
  return bytes * (SPLITS.test(word) ? 2 : 1) * (NON_ASCII.test(word) ? 1.5 : 1);
}

/** A lexeme's first position: a padding byte, the positions' count and the position (2 bytes each). */
const FIRST_POSITION_BYTES = 5;
/** Each further position of a lexeme: 2 bytes, up to the 256 positions a lexeme keeps. */
const NEXT_POSITION_BYTES = 2;
const MAX_POSITIONS = 256;
const RUNS = /[\p{L}\p{N}]+/gu;

/**
 * The tokens one occurrence of a word may make, at most: each run of letters and digits (the
 * parser splits at everything else), and for a compound (hyphenated, a URL, a path) the whole and
 * its pieces again.
 */
function tokensOf(word: string): number {
  const runs = word.match(RUNS)?.length ?? 0;
  return SPLITS.test(word) ? 2 * runs + 1 : runs;
}

/** A number's text: a sign, the integer digits and the fraction's, each a token at most. */
const NUMBER_TOKENS = 3;

/**
 * An upper bound of the bytes the payload's strings and numbers make in the vector: each distinct
 * word and number's text once (the vector keeps each lexeme once), and the positions of every
 * occurrence of its tokens; it stops counting past `limit`.
 */
export function searchableBytes(payload: unknown, limit = MAX_SEARCHABLE_BYTES): number {
  // Occurrences of each word and number so far: the first costs its text and its positions' header,
  // each further one (up to MAX_POSITIONS) a position per token.
  const seen = new Map<string, number>();
  const stack: unknown[] = [payload];
  let total = 0;
  const count = (key: string, tokens: number, text: () => number) => {
    const n = seen.get(key) ?? 0;
    if (n >= MAX_POSITIONS) return;
    seen.set(key, n + 1);
    total += n === 0 ? text() + tokens * FIRST_POSITION_BYTES : tokens * NEXT_POSITION_BYTES;
  };
  while (stack.length > 0 && total <= limit) {
    const value = stack.pop();
    if (typeof value === 'string') {
      for (const word of value.split(/\s+/)) {
        if (word !== '') count(`s${word}`, tokensOf(word), () => wordBytes(word));
      }
    } else if (typeof value === 'number') {
      count(`#${value}`, NUMBER_TOKENS, () => numericLength(value));
    } else if (value !== null && typeof value === 'object') {
      // One at a time: spreading an array of a million items would overflow the call's arguments.
      for (const item of Array.isArray(value) ? value : Object.values(value)) stack.push(item);
    }
  }
  return total;
}

/** True when the payload's search text may pass what an exception's search vector holds. */
export const tooMuchToSearch = (payload: unknown): boolean => searchableBytes(payload) > MAX_SEARCHABLE_BYTES;
