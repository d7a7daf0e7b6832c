import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import type { Address } from '../identity/index.ts';
import { AppError, type FieldError } from '../platform/http/index.ts';
import { fieldErrors } from '../platform/http/problem-handler.ts';
import { InlineAddress, Uuid } from './cart-schemas.ts';
import type { CartDeps } from './deps.ts';
import { throwIfInvalid } from './settings-rules.ts';
import type { CartAddress } from './tables.ts';

const inline = Compile(InlineAddress);
const fromBook = Compile(Type.Object({ addressId: Uuid }, { additionalProperties: false }));

type Choice = { addressId: string } | CartAddress | null | undefined;
type Which = 'shipping' | 'billing';

/**
 * Reads one of PUT /cart/addresses' fields: {addressId}, an inline address (the schema, then the
 * address book's own check of its country, postal code and region, which also gives their
 * canonical forms: in the United States, Canada and Australia the region is required and kept as
 * its code, as identity's regions.ts lists them), or null. Failing fields are added to errors with
 * pointers under /shipping or /billing.
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
  const checked = deps.addresses.checkAddress(raw['country'], raw['postalCode'], raw['region'] ?? null);
  const schemaErrors = inline.Check(value)
    ? []
    : fieldErrors('body', [...inline.Errors(value)] as Parameters<typeof fieldErrors>[1]);
  const pointers = new Set(schemaErrors.map((e) => e.pointer));
  errors.push(...under([...schemaErrors, ...checked.errors.filter((e) => !pointers.has(e.pointer))]));
  if (!inline.Check(value) || checked.errors.length > 0) return undefined;
  return {
    recipient: value.recipient,
    line1: value.line1,
    line2: value.line2 ?? null,
    city: value.city,
    region: checked.region ?? null,
    postalCode: checked.postalCode!,
    country: checked.country!,
    phone: value.phone ?? null,
    addressId: null,
  };
}

/**
 * A book address's region checked as the book now checks it: one saved before the book checked
 * regions ("Mass.", or none in the United States) is refused naming the id sent, telling the
 * customer to fix the saved address, since the rates cannot name it and it would be taxed at the
 * country's rate.
 */
function savedRegion(deps: CartDeps, found: Address, which: Which, errors: FieldError[]) {
  const checked = deps.addresses.checkAddress(found.country, undefined, found.region ?? null);
  const what = found.region?.trim() ? `its region ${JSON.stringify(found.region)}` : 'its region';
  for (const error of checked.errors) {
    errors.push({
      in: 'body',
      pointer: `/${which}/addressId`,
      message: `${what} ${error.message}; fix the saved address (PUT /api/v1/users/addresses/${found.id})`,
    });
  }
  return checked.region ?? null;
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
    const region = savedRegion(deps, found, which, errors);
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
