import { type FieldError, validationFailed } from '../../platform/http/index.ts';
import { toAppError } from '../../platform/http/problem-handler.ts';
import { isCountryCode } from './countries.ts';
import { normalisePostalCode, postalCodeFits } from './postal-codes.ts';

/**
 * Checks a country and a postal code together, returning their canonical forms and the fields
 * that fail. Values that are not strings are left to the schema's own errors.
 */
export function checkCountryAndPostalCode(
  country: unknown,
  postalCode: unknown,
): { errors: FieldError[]; country?: string; postalCode?: string } {
  if (typeof country !== 'string') return { errors: [] };
  const code = country.toUpperCase();
  if (!isCountryCode(code)) {
    return {
      errors: [{ in: 'body', pointer: '/country', message: 'is not an ISO 3166-1 alpha-2 country code' }],
    };
  }
  if (typeof postalCode !== 'string') return { errors: [], country: code };
  const canonical = normalisePostalCode(code, postalCode);
  if (!postalCodeFits(code, canonical)) {
    return {
      errors: [{ in: 'body', pointer: '/postalCode', message: `is not a valid postal code for ${code}` }],
      country: code,
    };
  }
  return { errors: [], country: code, postalCode: canonical };
}

/**
 * Throws one VALIDATION_FAILED listing the schema's failing fields (attached by Fastify's
 * attachValidation) together with the rules' own, so a client sees every problem at once.
 * A failing path parameter is thrown as it is.
 */
export function throwIfInvalid(schemaError: Error | undefined, ruleErrors: FieldError[]): void {
  if (schemaError && (schemaError as { validationContext?: string }).validationContext !== 'body') {
    throw toAppError(schemaError);
  }
  const schemaErrors = schemaError ? (toAppError(schemaError).extras.errors ?? []) : [];
  // One error per field: a nullable field's union fails once per branch; the first says the most.
  const byPointer = new Map<string, FieldError>();
  for (const error of [...schemaErrors, ...ruleErrors])
    if (!byPointer.has(error.pointer)) byPointer.set(error.pointer, error);
  const errors = [...byPointer.values()];
  if (errors.length > 0) {
    throw validationFailed(errors);
  }
}
