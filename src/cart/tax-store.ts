import type { Selectable } from 'kysely';
import { isoTime as iso, lockNamed } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { CartTrx, TaxRatesTable } from './tables.ts';

/** A tax rate for a country, or for one region of it (the region's wins). */
export type TaxRate = {
  id: string;
  country: string;
  region: string | null;
  /** Basis points: 2000 = 20 %. */
  rateBps: number;
  name: string;
  createdAt: string;
  updatedAt: string;
};

export type TaxRateFields = Pick<TaxRate, 'country' | 'region' | 'rateBps' | 'name'>;

export type CartSettings = { pricesIncludeTax: boolean };

/** Rates a tenant may keep. */
export const MAX_TAX_RATES = 1000;

function toRate(row: Selectable<TaxRatesTable>): TaxRate {
  return {
    id: row.id,
    country: row.country,
    region: row.region,
    rateBps: row.rate_bps,
    name: row.name,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** A unique-violation on (country, region) answers 409 instead of 500. */
async function uniquePlace<T>(write: () => Promise<T>, fields: Partial<TaxRateFields>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new AppError(
        'CONFLICT',
        `a tax rate for ${fields.country ?? 'this country'}${fields.region ? `/${fields.region}` : ''} already exists`,
        {},
        { cause: error },
      );
    }
    throw error;
  }
}

export async function listTaxRates(trx: CartTrx, tenantId: string): Promise<TaxRate[]> {
  const rows = await trx
    .selectFrom('cart.tax_rates')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('country')
    .orderBy('region')
    .orderBy('id')
    .execute();
  return rows.map(toRate);
}

export async function getTaxRate(trx: CartTrx, tenantId: string, id: string): Promise<TaxRate> {
  const row = await trx
    .selectFrom('cart.tax_rates')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `tax rate ${id} not found`);
  return toRate(row);
}

export async function createTaxRate(trx: CartTrx, tenantId: string, fields: TaxRateFields): Promise<TaxRate> {
  // Counted under a lock of the store's tax rates, so two created at once cannot both pass the limit.
  await lockNamed(trx, `cart.tax_rates:${tenantId}`);
  const { count } = await trx
    .selectFrom('cart.tax_rates')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  if (Number(count) >= MAX_TAX_RATES) {
    throw new AppError('CONFLICT', `a store keeps at most ${MAX_TAX_RATES} tax rates`);
  }
  const row = await uniquePlace(
    () =>
      trx
        .insertInto('cart.tax_rates')
        .values({
          id: uuidv7(),
          tenant_id: tenantId,
          country: fields.country,
          region: fields.region,
          rate_bps: fields.rateBps,
          name: fields.name,
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    fields,
  );
  return toRate(row);
}

export async function updateTaxRate(
  trx: CartTrx,
  tenantId: string,
  id: string,
  fields: Partial<TaxRateFields>,
): Promise<TaxRate> {
  const row = await uniquePlace(
    () =>
      trx
        .updateTable('cart.tax_rates')
        .set({
          ...(fields.country !== undefined ? { country: fields.country } : {}),
          ...(fields.region !== undefined ? { region: fields.region } : {}),
          ...(fields.rateBps !== undefined ? { rate_bps: fields.rateBps } : {}),
          ...(fields.name !== undefined ? { name: fields.name } : {}),
          updated_at: new Date(),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst(),
    fields,
  );
  if (!row) throw new AppError('NOT_FOUND', `tax rate ${id} not found`);
  return toRate(row);
}

export async function deleteTaxRate(trx: CartTrx, tenantId: string, id: string): Promise<void> {
  const result = await trx
    .deleteFrom('cart.tax_rates')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw new AppError('NOT_FOUND', `tax rate ${id} not found`);
}

export async function getSettings(trx: CartTrx, tenantId: string): Promise<CartSettings> {
  const row = await trx
    .selectFrom('cart.settings')
    .select('prices_include_tax')
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  return { pricesIncludeTax: row?.prices_include_tax ?? false };
}

export async function putSettings(
  trx: CartTrx,
  tenantId: string,
  settings: CartSettings,
): Promise<CartSettings> {
  await trx
    .insertInto('cart.settings')
    .values({ tenant_id: tenantId, prices_include_tax: settings.pricesIncludeTax, updated_at: new Date() })
    .onConflict((oc) =>
      oc
        .column('tenant_id')
        .doUpdateSet({ prices_include_tax: settings.pricesIncludeTax, updated_at: new Date() }),
    )
    .execute();
  return settings;
}
