import { Type } from 'typebox';
import { Country, Currency, Nullable, Text, Uuid } from './cart-schemas.ts';

/** A flat price, bounded as the catalog bounds its prices (so totals stay exact integers). */
const Price = Type.Integer({
  minimum: 0,
  maximum: 1_000_000_000_000,
  description: 'Integer minor units of the currency',
});
const Prices = Type.Record(Currency, Price, {
  minProperties: 1,
  maxProperties: 50,
  description: 'ISO 4217 code -> flat price in integer minor units',
});
const Countries = Type.Array(Country, { minItems: 1, maxItems: 250, uniqueItems: true });

export const ShippingOptionBody = Type.Object(
  { name: Text(200), countries: Countries, prices: Prices, active: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export const ShippingOptionPatch = Type.Object(
  {
    name: Type.Optional(Text(200)),
    countries: Type.Optional(Countries),
    prices: Type.Optional(Prices),
    active: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const ShippingOptionView = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    countries: Type.Array(Type.String()),
    prices: Type.Record(Type.String(), Type.Integer()),
    active: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'ShippingOption' },
);

const Region = Nullable(Text(100));
const RateBps = Type.Integer({ minimum: 0, maximum: 10_000, description: 'Basis points: 2000 = 20 %' });
export const TaxRateBody = Type.Object(
  { country: Country, region: Type.Optional(Region), rateBps: RateBps, name: Text(200) },
  { additionalProperties: false },
);
export const TaxRatePatch = Type.Object(
  {
    country: Type.Optional(Country),
    region: Type.Optional(Region),
    rateBps: Type.Optional(RateBps),
    name: Type.Optional(Text(200)),
  },
  { additionalProperties: false },
);
export const TaxRateView = Type.Object(
  {
    id: Uuid,
    country: Type.String(),
    region: Nullable(Type.String()),
    rateBps: Type.Integer(),
    name: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'TaxRate' },
);

export const TaxSettingsBody = Type.Object(
  {
    pricesIncludeTax: Type.Boolean({
      description: 'Whether catalog prices include tax (the tax is then the part of the price it makes up)',
    }),
  },
  { additionalProperties: false, title: 'TaxSettings' },
);
