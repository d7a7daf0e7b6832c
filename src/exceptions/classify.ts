import type { Selectable } from 'kysely';
import type { Category, ExceptionsTrx, InterfaceType, RulesTable, Severity } from './tables.ts';

/** What an exception is classified as. */
export type Classification = { category: Category; severity: Severity; retryable: boolean };

/** What classification reads of an exception. */
export type Classifiable = {
  interfaceType: InterfaceType;
  operation: string;
  reason: string;
  customerId?: string | null | undefined;
  /** Money at stake, in minor units. */
  amount?: number | null | undefined;
};

export type Rule = Selectable<RulesTable>;

/** An ORDER failure with at least this much at stake (minor units, whatever the currency) is HIGH. */
export const HIGH_AMOUNT = 100_000;

/**
 * The default category by the reason's text: the first row that matches wins (network before
 * timeout, so "504 Gateway Timeout" is a network error; business rules before validation, so
 * "insufficient stock for the required quantity" is a business rule). Every pattern is ours,
 * linear, and runs on at most 4,000 characters; a tenant's rules never become a regex.
 */
const CATEGORY_BY_TEXT: [Category, RegExp][] = [
  [
    'NETWORK_ERROR',
    /econnrefused|econnreset|ehostunreach|enetunreach|enotfound|eai_again|epipe|connection (?:refused|reset|closed|aborted)|socket hang up|\b50[234]\b|bad gateway|service unavailable|network/,
  ],
  ['TIMEOUT', /timed? ?out|timeout|etimedout|deadline exceeded/],
  ['DUPLICATE', /duplicate|already exists|already processed|already submitted|already been/],
  [
    'BUSINESS_RULE',
    /insufficient|out of stock|sold out|credit limit|declined|not enough|limit exceeded|exceeds (?:the )?(?:\w+ )?limit|blocked|not eligible|not allowed|embargo/,
  ],
  [
    'VALIDATION',
    /invalid|missing|required|format|malformed|must be|not a valid|schema|validation|too long|too short|out of range/,
  ],
  ['SYSTEM_ERROR', /error|exception|internal|crash|failed|failure|unavailable|panic|fault|\b500\b/],
];

const PAYMENT = /payment|card|charge|refund/;

/** Categories a retry can fix. UNKNOWN is retryable too: the operator decides. */
const RETRYABLE: ReadonlySet<Category> = new Set(['NETWORK_ERROR', 'TIMEOUT', 'SYSTEM_ERROR', 'UNKNOWN']);

/** The category the reason's text says, else the interface type's own (VALIDATION), else UNKNOWN. */
export function defaultCategory(interfaceType: InterfaceType, reason: string): Category {
  const text = reason.toLowerCase();
  const found = CATEGORY_BY_TEXT.find(([, pattern]) => pattern.test(text))?.[0];
  // A ValidationError event is a validation failure unless its text names something sharper.
  if (interfaceType === 'VALIDATION' && (found === undefined || found === 'SYSTEM_ERROR'))
    return 'VALIDATION';
  return found ?? 'UNKNOWN';
}

/**
 * The documented default severity (README, Capture): HIGH for SYSTEM_ERROR, LOW for DUPLICATE,
 * MEDIUM otherwise, raised to HIGH for an ORDER failure about a payment or with HIGH_AMOUNT or
 * more at stake.
 */
export function defaultSeverity(input: Classifiable, category: Category): Severity {
  if (category === 'SYSTEM_ERROR') return 'HIGH';
  if (category === 'DUPLICATE') return 'LOW';
  const payment = PAYMENT.test(`${input.operation} ${input.reason}`.toLowerCase());
  if (input.interfaceType === 'ORDER' && ((input.amount ?? 0) >= HIGH_AMOUNT || payment)) return 'HIGH';
  return 'MEDIUM';
}

/**
 * The documented defaults: the category from the reason's text, the severity from it, and
 * retryable for network errors, timeouts, system errors and unknown failures. `preset` (what
 * Mercato knows of its own failures) goes first; what it leaves out follows from its category.
 */
export function defaultClassification(
  input: Classifiable,
  preset: Partial<Classification> = {},
): Classification {
  const category = preset.category ?? defaultCategory(input.interfaceType, input.reason);
  return {
    category,
    severity: preset.severity ?? defaultSeverity(input, category),
    retryable: preset.retryable ?? RETRYABLE.has(category),
  };
}

/**
 * Whether a rule matches: every condition it sets holds (interface type and operation equal,
 * the reason contains its text in any case, customer id equal). A rule without conditions
 * matches everything.
 */
export function ruleMatches(rule: Rule, input: Classifiable): boolean {
  if (!rule.enabled) return false;
  if (rule.match_interface_type !== null && rule.match_interface_type !== input.interfaceType) return false;
  if (rule.match_operation !== null && rule.match_operation !== input.operation) return false;
  if (rule.match_customer_id !== null && rule.match_customer_id !== (input.customerId ?? null)) return false;
  if (rule.match_reason !== null && !input.reason.toLowerCase().includes(rule.match_reason.toLowerCase())) {
    return false;
  }
  return true;
}

/**
 * The classification of one exception: the defaults (after `preset`), then the first enabled
 * rule that matches, by position, overriding what it sets. `rule` names that rule (for the audit).
 */
export function classify(
  input: Classifiable,
  rules: readonly Rule[],
  preset: Partial<Classification> = {},
): Classification & { rule: string | null } {
  const base = defaultClassification(input, preset);
  const rule = rules.find((r) => ruleMatches(r, input));
  if (!rule) return { ...base, rule: null };
  return {
    category: rule.set_category ?? base.category,
    severity: rule.set_severity ?? base.severity,
    retryable: rule.set_retryable ?? base.retryable,
    rule: rule.id,
  };
}

/** The tenant's enabled rules in the order they are tried (trx is the tenant's). */
export function loadRules(trx: ExceptionsTrx): Promise<Rule[]> {
  return trx
    .selectFrom('exceptions.rules')
    .selectAll()
    .where('enabled', '=', true)
    .orderBy('position')
    .orderBy('id')
    .execute();
}
