import { type FieldError, validationFailed } from '../../platform/http/index.ts';
import { toAppError } from '../../platform/http/problem-handler.ts';
import { isCountryCode } from './countries.ts';
import { normalisePostalCode, postalCodeFits } from './postal-codes.ts';
import { hasRegionList, regionCode, unknownRegion } from './regions.ts';

/** An address's place in canonical form, and the fields that fail. */
export type CheckedAddress = {
  errors: FieldError[];
  country?: string;
  postalCode?: string;
  region?: string | null;
};

/**
 * An address's region in canonical form: in a country whose regions are listed (regions.ts) its
 * code, refused when it is none of them and required (a region the rates cannot name, or none,
 * is a wrong tax: the country's rate); elsewhere trimmed free text, a blank one none.
 */
function checkRegion(country: string, region: unknown): { error?: FieldError; region?: string | null } {
  const text = typeof region === 'string' ? region.trim() : region === null ? '' : undefined;
  if (text === undefined) return {};
  if (!hasRegionList(country)) return { region: text === '' ? null : text };
  const error = (message: string) => ({ error: { in: 'body' as const, pointer: '/region', message } });
  if (text === '') return error(`is required in ${country}`);
  const code = regionCode(country, text);
  return code === null ? error(unknownRegion(country)) : { region: code };
}

/**
 * Checks an address's country, postal code and region together, returning their canonical forms
 * and the fields that fail (pointers /country, /postalCode, /region). A postal code or region
 * passed as undefined is not checked (the country alone, or a change that leaves the region as it
 * is); a region passed as null or blank is missing, which a country with listed regions refuses.
 * Other values that are not strings are left to the schema's own errors.
 */
export function checkAddress(country: unknown, postalCode: unknown, region?: unknown): CheckedAddress {
  if (typeof country !== 'string') return { errors: [] };
  const code = country.toUpperCase();
  if (!isCountryCode(code)) {
    return {
      errors: [{ in: 'body', pointer: '/country', message: 'is not an ISO 3166-1 alpha-2 country code' }],
    };
  }
  const checked: CheckedAddress = { errors: [], country: code };
  if (typeof postalCode === 'string') {
    const canonical = normalisePostalCode(code, postalCode);
    if (postalCodeFits(code, canonical)) checked.postalCode = canonical;
    else
      checked.errors.push({
        in: 'body',
        pointer: '/postalCode',
        message: `is not a valid postal code for ${code}`,
      });
  }
  const place = checkRegion(code, region);
  if (place.error) checked.errors.push(place.error);
  if (place.region !== undefined) checked.region = place.region;
  return checked;
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
