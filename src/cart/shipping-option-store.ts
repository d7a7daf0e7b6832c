import type { Selectable } from 'kysely';
import { isoTime as iso, lockNamed } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { CartTrx, ShippingOptionsTable } from './tables.ts';

/** A flat-rate shipping option: one price per currency for every listed country. */
export type ShippingOption = {
  id: string;
  name: string;
  countries: string[];
  prices: Record<string, number>;
  active: boolean;
  createdAt: string;
  updatedAt: string;
};

export type ShippingOptionFields = Pick<ShippingOption, 'name' | 'countries' | 'prices' | 'active'>;

/** Options a tenant may keep. */
export const MAX_SHIPPING_OPTIONS = 200;

function toOption(row: Selectable<ShippingOptionsTable>): ShippingOption {
  return {
    id: row.id,
    name: row.name,
    countries: row.countries,
    prices: row.prices,
    active: row.active,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** Whether the option can ship a cart in currency to country. */
export function serves(
  option: Pick<ShippingOption, 'active' | 'countries' | 'prices'>,
  country: string | undefined,
  currency: string | null,
): boolean {
  return (
    option.active &&
    country !== undefined &&
    option.countries.includes(country) &&
    currency !== null &&
    option.prices[currency] !== undefined
  );
}

export async function listShippingOptions(trx: CartTrx, tenantId: string): Promise<ShippingOption[]> {
  const rows = await trx
    .selectFrom('cart.shipping_options')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id')
    .execute();
  return rows.map(toOption);
}

export async function findShippingOption(
  trx: CartTrx,
  tenantId: string,
  id: string,
): Promise<ShippingOption | undefined> {
  const row = await trx
    .selectFrom('cart.shipping_options')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row ? toOption(row) : undefined;
}

export async function getShippingOption(trx: CartTrx, tenantId: string, id: string): Promise<ShippingOption> {
  const option = await findShippingOption(trx, tenantId, id);
  if (!option) throw new AppError('NOT_FOUND', `shipping option ${id} not found`);
  return option;
}

export async function createShippingOption(
  trx: CartTrx,
  tenantId: string,
  fields: ShippingOptionFields,
): Promise<ShippingOption> {
  // Counted under a lock of the store's shipping options, so two created at once cannot both pass the limit.
  await lockNamed(trx, `cart.shipping_options:${tenantId}`);
  const { count } = await trx
    .selectFrom('cart.shipping_options')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  if (Number(count) >= MAX_SHIPPING_OPTIONS) {
    throw new AppError('CONFLICT', `a store keeps at most ${MAX_SHIPPING_OPTIONS} shipping options`);
  }
  const row = await trx
    .insertInto('cart.shipping_options')
    .values({
      id: uuidv7(),
      tenant_id: tenantId,
      name: fields.name,
      countries: fields.countries,
      prices: JSON.stringify(fields.prices),
      active: fields.active,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toOption(row);
}

export async function updateShippingOption(
  trx: CartTrx,
  tenantId: string,
  id: string,
  fields: Partial<ShippingOptionFields>,
): Promise<ShippingOption> {
  const row = await trx
    .updateTable('cart.shipping_options')
    .set({
      ...(fields.name !== undefined ? { name: fields.name } : {}),
      ...(fields.countries !== undefined ? { countries: fields.countries } : {}),
      ...(fields.prices !== undefined ? { prices: JSON.stringify(fields.prices) } : {}),
      ...(fields.active !== undefined ? { active: fields.active } : {}),
      updated_at: new Date(),
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `shipping option ${id} not found`);
  return toOption(row);
}

/**
 * Deletes an option; carts that chose it lose the choice (their shipping becomes 0) on their next
 * read or change (cart-view.ts drops an option that is gone; a merge treats one as none). No cart
 * is written here: no index serves carts by option, so clearing them was a scan of every tenant's
 * carts on each delete, which a store's staff could repeat at will.
 */
export async function deleteShippingOption(trx: CartTrx, tenantId: string, id: string): Promise<void> {
  const result = await trx
    .deleteFrom('cart.shipping_options')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw new AppError('NOT_FOUND', `shipping option ${id} not found`);
}
