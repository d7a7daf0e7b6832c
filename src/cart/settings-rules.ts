import { withTenant } from '../platform/db/index.ts';
import { type FieldError, principalOf, validationFailed } from '../platform/http/index.ts';
import type { CartDeps } from './deps.ts';
import type { CartTrx } from './tables.ts';

const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

/**
 * 400 naming /currency when a shopper's currency is not ISO 4217 (as the catalog's prices): the
 * schema's pattern alone let a cart take "ZZZ", which nothing is priced in.
 */
export function assertIsoCurrency(currency: string | undefined): void {
  if (currency !== undefined && !CURRENCIES.has(currency)) {
    throw validationFailed([
      { in: 'body', pointer: '/currency', message: 'is not an ISO 4217 currency code' },
    ]);
  }
}

/** Throws one VALIDATION_FAILED naming every failing field, when there is any. */
export function throwIfInvalid(errors: FieldError[]): void {
  if (errors.length > 0) {
    throw validationFailed(errors);
  }
}

/** The tenant of a staff request. */
const staffTenant = (request: Parameters<typeof principalOf>[0]): string => principalOf(request).tenantId;

/** Runs fn in a transaction of the staff request's tenant. */
export function inStaffTenant<T>(
  deps: CartDeps,
  request: Parameters<typeof principalOf>[0],
  fn: (trx: CartTrx, tenantId: string) => Promise<T>,
): Promise<T> {
  const tenantId = staffTenant(request);
  return withTenant(deps.db, tenantId, (trx) => fn(trx, tenantId));
}

/** Checks of staff input beyond the schema: ISO countries (as the address book checks them) and ISO 4217 currencies. */
export function settingsRules(deps: CartDeps) {
  const country = (value: string, pointer: string, errors: FieldError[]): string => {
    const checked = deps.addresses.checkAddress(value, undefined);
    for (const e of checked.errors) errors.push({ ...e, pointer });
    return checked.country ?? value;
  };
  const countries = (values: string[] | undefined, errors: FieldError[]) => {
    const upper = values?.map((c, i) => country(c, `/countries/${i}`, errors));
    if (upper && new Set(upper).size !== upper.length) {
      errors.push({ in: 'body', pointer: '/countries', message: 'lists a country twice' });
    }
    return upper;
  };
  const currencies = (prices: Record<string, number> | undefined, errors: FieldError[]) => {
    for (const code of Object.keys(prices ?? {})) {
      if (!CURRENCIES.has(code)) {
        errors.push({ in: 'body', pointer: `/prices/${code}`, message: 'is not an ISO 4217 currency code' });
      }
    }
  };
  return { country, countries, currencies };
}
