// Postal code formats per country, matched against the normalised form (trimmed, uppercase,
// single spaces). Sources: the national postal operators' published formats (UPU POST*CODE).
const FIVE = /^\d{5}$/;
const FOUR = /^\d{4}$/;
const SIX = /^\d{6}$/;

const PATTERNS: Record<string, RegExp> = {
  US: /^\d{5}(-\d{4})?$/,
  CA: /^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] \d[ABCEGHJ-NPRSTV-Z]\d$/,
  GB: /^(GIR 0AA|[A-PR-UWYZ](\d{1,2}|[A-HK-Y]\d[\dABEHMNPRV-Y]?|\d[A-HJKPS-UW]) \d[ABD-HJLNP-UW-Z]{2})$/,
  IE: /^([AC-FHKNPRTV-Y]\d{2}|D6W) [\dAC-FHKNPRTV-Y]{4}$/,
  NL: /^[1-9]\d{3} [A-Z]{2}$/,
  JP: /^\d{3}-\d{4}$/,
  BR: /^\d{5}-\d{3}$/,
  PL: /^\d{2}-\d{3}$/,
  PT: /^\d{4}-\d{3}$/,
  SE: /^\d{3} \d{2}$/,
  CZ: /^\d{3} \d{2}$/,
  SK: /^\d{3} \d{2}$/,
  GR: /^\d{3} \d{2}$/,
  ES: /^(0[1-9]|[1-4]\d|5[0-2])\d{3}$/,
  IN: /^[1-9]\d{5}$/,
  DE: FIVE,
  FR: FIVE,
  IT: FIVE,
  FI: FIVE,
  MX: FIVE,
  KR: FIVE,
  AU: FOUR,
  AT: FOUR,
  BE: FOUR,
  CH: FOUR,
  DK: FOUR,
  NO: FOUR,
  NZ: FOUR,
  ZA: FOUR,
  HU: FOUR,
  LU: FOUR,
  CN: SIX,
  RU: SIX,
  SG: SIX,
};

// Anywhere else: letters and digits with inner spaces or hyphens, 2 to 10 characters.
const GENERIC = /^[A-Z0-9](?:[A-Z0-9 -]{0,8}[A-Z0-9])$/;

// Where people commonly type the code without its separator, the canonical form inserts it.
const SEPARATORS: Record<string, { at: number; separator: string }> = {
  CA: { at: 3, separator: ' ' },
  GB: { at: -3, separator: ' ' },
  IE: { at: 3, separator: ' ' },
  NL: { at: 4, separator: ' ' },
  JP: { at: 3, separator: '-' },
  BR: { at: 5, separator: '-' },
  PL: { at: 2, separator: '-' },
  PT: { at: 4, separator: '-' },
  SE: { at: 3, separator: ' ' },
  CZ: { at: 3, separator: ' ' },
  SK: { at: 3, separator: ' ' },
  GR: { at: 3, separator: ' ' },
};

/** The canonical form of a postal code for a country: uppercase, single spaces, separator in place. */
export function normalisePostalCode(country: string, postalCode: string): string {
  const code = postalCode.trim().toUpperCase().replace(/\s+/g, ' ');
  const rule = SEPARATORS[country];
  if (!rule || code.includes(rule.separator)) return code;
  const compact = code.replace(/[ -]/g, '');
  const at = rule.at < 0 ? compact.length + rule.at : rule.at;
  if (at <= 0 || at >= compact.length) return code;
  return `${compact.slice(0, at)}${rule.separator}${compact.slice(at)}`;
}

/** True when the (normalised) postal code has the country's format, or the generic one. */
export function postalCodeFits(country: string, postalCode: string): boolean {
  return (PATTERNS[country] ?? GENERIC).test(postalCode);
}
