import { createHash } from 'node:crypto';
import { cutText } from '../platform/text.ts';
import type { Category, InterfaceType } from './tables.ts';

/** The longest normalized reason kept (and hashed). */
export const NORMALIZED_REASON_MAX = 500;

// Order matters: the longer, more specific shapes go first, so a UUID is not eaten as digits.
// Every pattern is linear (no nested quantifiers) and runs on at most 4,000 characters.
const PLACEHOLDERS: [RegExp, string][] = [
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<uuid>'],
  [/[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+/g, '<email>'],
  [/"[^"\n]{0,200}"|'[^'\n]{0,200}'|`[^`\n]{0,200}`/g, '<value>'],
  // A hex id: 0x… or a run of 8+ hex characters holding at least one digit (so "deadbeef" words stay).
  [/\b0x[0-9a-f]+\b/g, '<hex>'],
  [/\b(?=[a-f]*\d)[0-9a-f]{8,}\b/g, '<hex>'],
  [/\d+(?:[.,]\d+)*/g, '<n>'],
];

/**
 * The reason with what varies between occurrences of one failure taken out: lower case; UUIDs,
 * emails, quoted values, hex ids and numbers replaced by placeholders; whitespace collapsed; cut
 * at 500 characters. "Order 1042 rejected: credit limit 5000 exceeded" and "Order 77 rejected:
 * credit limit 900 exceeded" normalize alike.
 */
export function normalizeReason(reason: string): string {
  let text = reason.toLowerCase();
  for (const [pattern, placeholder] of PLACEHOLDERS) text = text.replace(pattern, placeholder);
  return cutText(text.replace(/\s+/g, ' ').trim(), NORMALIZED_REASON_MAX);
}

/** The group of an exception: sha256 (hex) of its interface type, category and normalized reason. */
export function fingerprint(
  interfaceType: InterfaceType,
  category: Category,
  normalizedReason: string,
): string {
  return createHash('sha256').update(`${interfaceType}\n${category}\n${normalizedReason}`).digest('hex');
}
