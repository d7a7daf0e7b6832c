import { sql } from 'kysely';
import { regionCode } from '../identity/index.ts';
import type { ShippingOption } from './shipping-option-store.ts';
import type { CartTrx } from './tables.ts';

/** The shipping option's fields a cart's totals need. */
export type OptionForTotals = Pick<ShippingOption, 'id' | 'name' | 'countries' | 'prices' | 'active'>;

export type PricingContext = {
  pricesIncludeTax: boolean;
  taxRateBps: number;
  option: OptionForTotals | undefined;
};

/**
 * What a cart's totals need besides its lines, read in one statement: whether the tenant's
 * prices include tax, the tax rate of the address (its region's rate, matched whatever the case
 * and surrounding spaces, else its country's, else 0), and the cart's shipping option as it is
 * now (undefined when it is gone). In a country whose regions are listed (regions.ts) the region
 * is also matched by its code, so an address stored before regions were checked ("california")
 * gets the rate for CA; the code's rate first.
 */
export async function pricingContext(
  trx: CartTrx,
  tenantId: string,
  address: { country: string; region: string | null } | null,
  shippingOptionId: string | null,
): Promise<PricingContext> {
  // Compared as PostgreSQL lowers both sides, around any surrounding spaces: JavaScript lowers some
  // letters otherwise ('İ' is 'i̇' there, 'i' in PostgreSQL), and the index of places uses lower().
  const region = address?.region?.trim() || null;
  const code = address && region ? regionCode(address.country, region) : null;
  const regions = [...new Set([region, code].filter((r) => r !== null))];
  const row = await trx
    .selectNoFrom((eb) => [
      eb
        .selectFrom('cart.settings')
        .select('prices_include_tax')
        .where('tenant_id', '=', tenantId)
        .as('prices_include_tax'),
      address
        ? eb
            .selectFrom('cart.tax_rates')
            .select('rate_bps')
            .where('tenant_id', '=', tenantId)
            .where('country', '=', address.country)
            .where((w) =>
              w.or([
                w('region', 'is', null),
                ...regions.map((r) => w(sql`lower(btrim(region))`, '=', sql`lower(${r})`)),
              ]),
            )
            // The region's own rate before the country's, its code's before its text's.
            .orderBy(sql`region is null`)
            .orderBy(sql`lower(btrim(region)) is distinct from lower(${code}::text)`)
            .orderBy('region')
            .limit(1)
            .as('rate_bps')
        : sql<number | null>`null::int`.as('rate_bps'),
      shippingOptionId
        ? eb
            .selectFrom('cart.shipping_options')
            .select(
              sql<OptionForTotals>`jsonb_build_object('id', id, 'name', name, 'countries', countries, 'prices', prices, 'active', active)`.as(
                'o',
              ),
            )
            .where('tenant_id', '=', tenantId)
            .where('id', '=', shippingOptionId)
            .as('option')
        : sql<OptionForTotals | null>`null::jsonb`.as('option'),
    ])
    .executeTakeFirstOrThrow();
  const option = typeof row.option === 'string' ? (JSON.parse(row.option) as OptionForTotals) : row.option;
  return {
    pricesIncludeTax: row.prices_include_tax ?? false,
    taxRateBps: row.rate_bps === null || row.rate_bps === undefined ? 0 : Number(row.rate_bps),
    option: option ?? undefined,
  };
}
