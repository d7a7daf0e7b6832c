import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { AppError, type FieldError } from '../platform/http/index.ts';
import { fieldErrors } from '../platform/http/problem-handler.ts';
import { InlineAddress, Uuid } from './cart-schemas.ts';
import type { CartDeps } from './deps.ts';
import { hasRegionList, regionCode, unknownRegion } from './regions.ts';
import { throwIfInvalid } from './settings-rules.ts';
import type { CartAddress } from './tables.ts';

const inline = Compile(InlineAddress);
const fromBook = Compile(Type.Object({ addressId: Uuid }, { additionalProperties: false }));

type Choice = { addressId: string } | CartAddress | null | undefined;
type Which = 'shipping' | 'billing';

/**
 * An address's region as the cart keeps it: in a country whose regions are listed (regions.ts),
 * its code, a blank one none, and any other text refused at `pointer` (a region the rates cannot
 * name is a wrong tax, as Shopify's checkout refuses it); elsewhere the text as it came.
 */
function regionOf(country: string, region: string | null, pointer: string, errors: FieldError[], what = '') {
  if (region === null || !hasRegionList(country)) return region;
  if (region.trim() === '') return null;
  const code = regionCode(country, region);
  if (code === null) errors.push({ in: 'body', pointer, message: `${what}${unknownRegion(country)}` });
  return code;
}

/**
 * Reads one of PUT /cart/addresses' fields: {addressId}, an inline address (the schema, then the
 * address book's own country and postal code check, which also gives their canonical forms), or
 * null. Failing fields are added to errors with pointers under /shipping or /billing.
 */
function readChoice(deps: CartDeps, value: unknown, which: Which, errors: FieldError[]): Choice {
  if (value === undefined || value === null) return value;
  const under = (list: FieldError[]) =>
    list.map((e) => ({ ...e, pointer: `/${which}${e.pointer === '/' ? '' : e.pointer}` }));
  if (typeof value === 'object' && 'addressId' in value) {
    if (fromBook.Check(value)) return { addressId: value.addressId };
    errors.push(
      ...under(fieldErrors('body', [...fromBook.Errors(value)] as Parameters<typeof fieldErrors>[1])),
    );
    return undefined;
  }
  const raw = value as Record<string, unknown>;
  const checked = deps.addresses.checkCountryAndPostalCode(raw['country'], raw['postalCode']);
  const schemaErrors = inline.Check(value)
    ? []
    : fieldErrors('body', [...inline.Errors(value)] as Parameters<typeof fieldErrors>[1]);
  const pointers = new Set(schemaErrors.map((e) => e.pointer));
  errors.push(...under([...schemaErrors, ...checked.errors.filter((e) => !pointers.has(e.pointer))]));
  if (!inline.Check(value) || checked.errors.length > 0) return undefined;
  const region = regionOf(checked.country!, value.region ?? null, `/${which}/region`, errors);
  return {
    recipient: value.recipient,
    line1: value.line1,
    line2: value.line2 ?? null,
    city: value.city,
    region,
    postalCode: checked.postalCode!,
    country: checked.country!,
    phone: value.phone ?? null,
    addressId: null,
  };
}

/**
 * The addresses of a PUT /cart/addresses body, as the cart stores them: inline ones checked,
 * address book ones copied from the signed-in user's book (someone else's id is a 404; guests
 * have no book). undefined keeps an address, null clears it.
 */
export async function resolveAddresses(
  deps: CartDeps,
  tenantId: string,
  userId: string | undefined,
  body: { shipping?: unknown; billing?: unknown },
): Promise<{ shipping?: CartAddress | null; billing?: CartAddress | null }> {
  const errors: FieldError[] = [];
  const choices = {
    shipping: readChoice(deps, body.shipping, 'shipping', errors),
    billing: readChoice(deps, body.billing, 'billing', errors),
  };
  throwIfInvalid(errors);
  const resolved: { shipping?: CartAddress | null; billing?: CartAddress | null } = {};
  for (const which of ['shipping', 'billing'] as const) {
    const choice = choices[which];
    if (choice === undefined) continue;
    if (choice === null || !('addressId' in choice) || choice.addressId === null) {
      resolved[which] = choice as CartAddress | null;
      continue;
    }
    if (!userId) {
      throw new AppError(
        'UNAUTHENTICATED',
        'addresses from an address book need a signed-in customer; guests send them inline',
      );
    }
    const found = await deps.addresses.find(tenantId, userId, choice.addressId);
    if (!found) throw new AppError('NOT_FOUND', `address ${choice.addressId} not found`);
    // The book keeps regions as text: one the cart cannot read is refused naming the id sent.
    const what = `its region ${JSON.stringify(found.region)} `;
    const region = regionOf(found.country, found.region, `/${which}/addressId`, errors, what);
    throwIfInvalid(errors);
    resolved[which] = {
      recipient: found.recipient,
      line1: found.line1,
      line2: found.line2,
      city: found.city,
      region,
      postalCode: found.postalCode,
      country: found.country,
      phone: found.phone,
      addressId: found.id,
    };
  }
  return resolved;
}
