import { cutText } from '../../platform/text.ts';

/**
 * What a shopper typed, as words, and the tsquery text built from them. Words are runs of letters,
 * digits and combining marks only, so nothing of the shopper's text reaches tsquery syntax: every word is quoted
 * and joined by our own operators, and the whole string is a bound parameter of to_tsquery.
 */

/** The most words of a query that are searched; the rest are ignored. */
export const MAX_QUERY_WORDS = 8;
/** Words longer than this are cut (no product word is longer; it bounds trigram work). */
export const MAX_WORD_LENGTH = 40;

/**
 * A word: a letter or digit, then letters, digits and combining marks. The marks are part of the
 * word in the scripts that write vowels with them (Devanagari "साड़ी", Thai, Tamil...), as
 * PostgreSQL's parser reads the documents; splitting at them found nothing.
 */
const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*/gu;
/** A word as queryWords makes it (search cursors carry them back). */
export const WORD_PATTERN = `[\\p{L}\\p{N}][\\p{L}\\p{M}\\p{N}]{0,${MAX_WORD_LENGTH - 1}}`;

/**
 * The lower-cased words of text (letters, digits and their marks; everything else separates),
 * each cut to MAX_WORD_LENGTH characters (code points: a cut never splits a surrogate pair).
 */
export function wordsOf(text: string, max = Number.POSITIVE_INFINITY): string[] {
  const words: string[] = [];
  for (const match of text.normalize('NFKC').toLowerCase().matchAll(WORD)) {
    const word = match[0];
    words.push(cutText(word, MAX_WORD_LENGTH));
    if (words.length >= max) break;
  }
  return words;
}

/** The words of a search box: at most MAX_QUERY_WORDS. */
export const queryWords = (q: string): string[] => wordsOf(q, MAX_QUERY_WORDS);

const quote = (word: string): string => `'${word}'`;

/**
 * tsquery text: every word must match (AND); a word with alternatives (typo corrections) matches
 * any of them; the last word also matches as a prefix when prefixLast ('lapt' finds laptops), so
 * search-as-you-type works. `weight` restricts every word to one weight class (suggest: titles).
 */
export function tsqueryText(
  groups: string[][],
  options: { prefixLast: boolean; weight?: 'A' } = { prefixLast: true },
): string {
  const w = options.weight ?? '';
  return groups
    .map((alternatives, i) => {
      const last = i === groups.length - 1 && options.prefixLast;
      const terms = alternatives.map((word) => `${quote(word)}:${last ? '*' : ''}${w}`.replace(/:$/, ''));
      return terms.length === 1 ? terms[0] : `(${terms.join(' | ')})`;
    })
    .join(' & ');
}
