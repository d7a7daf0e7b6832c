import type { FieldError } from '../../platform/http/index.ts';

/** How many patterns a target's `types` filter may list. */
export const MAX_TYPE_PATTERNS = 20;
/** The longest pattern. */
export const MAX_TYPE_PATTERN_LENGTH = 200;
/**
 * `*`, or dot-separated segments of letters, digits, `_` and `-`, the last of which may be `*`
 * (`mercato.product.*`): a `*` anywhere else, or next to other characters, is refused.
 */
export const TYPE_PATTERN = /^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$/;

/**
 * Checks a target's `types` (absent: every message) and returns it as stored, or undefined when
 * absent; each failing field is added to `issues` (`<at>/types`, `<at>/types/<i>`).
 */
export function checkTypePatterns(value: unknown, at: string, issues: FieldError[]): string[] | undefined {
  if (value === undefined) return undefined;
  const pointer = `${at}/types`;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_TYPE_PATTERNS) {
    issues.push({
      in: 'body',
      pointer,
      message: `must be an array of 1 to ${MAX_TYPE_PATTERNS} type patterns (omit it to deliver every message)`,
    });
    return undefined;
  }
  value.forEach((pattern, i) => {
    const message =
      typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_TYPE_PATTERN_LENGTH
        ? `must be a string of 1 to ${MAX_TYPE_PATTERN_LENGTH} characters`
        : !TYPE_PATTERN.test(pattern)
          ? 'must be an event type (letters, digits, _ and - in dot-separated segments) or end in .* (mercato.product.*), or be *'
          : undefined;
    if (message) issues.push({ in: 'body', pointer: `${pointer}/${i}`, message });
  });
  return value as string[];
}
