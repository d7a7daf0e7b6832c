import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** A jsonb column: read parsed, written as JSON text. */
type Json<T> = ColumnType<T, string, string>;
/** A bigint column of minor units: pg returns int8 as text, PGlite as a number. */
type Money = ColumnType<string | number, number, number>;

/** An address as the cart keeps it: a copy, so later edits to the address book do not change it. */
export type CartAddress = {
  recipient: string;
  line1: string;
  line2: string | null;
  city: string;
  region: string | null;
  postalCode: string;
  country: string;
  phone: string | null;
  /** The address book entry it was copied from, if any. */
  addressId: string | null;
};

/** Migration 0019. */
export type SettingsTable = {
  tenant_id: string;
  prices_include_tax: boolean;
  updated_at: Timestamp;
};

export type CartsTable = {
  id: string;
  tenant_id: string;
  customer_id: string | null;
  token_hash: string | null;
  currency: string | null;
  shipping_address: Json<CartAddress | null> | null;
  billing_address: Json<CartAddress | null> | null;
  shipping_option_id: string | null;
  /** Units of each line (by id) the order being placed from the cart took; null when none. */
  checkout_lines: ColumnType<Record<string, number> | null, string | null | undefined, string | null>;
  /** The order whose checkout recorded checkout_lines (migration 0069). */
  checkout_order_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
  active_at: Timestamp;
};

export type LinesTable = {
  id: string;
  tenant_id: string;
  cart_id: string;
  variant_id: string;
  product_id: string;
  sku: string;
  product_title: string;
  variant_title: string;
  options: Json<Record<string, string>>;
  image: string | null;
  quantity: number;
  unit_price: Money;
  price_changed_from: Money | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type ShippingOptionsTable = {
  id: string;
  tenant_id: string;
  name: string;
  countries: string[];
  prices: Json<Record<string, number>>;
  active: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type TaxRatesTable = {
  id: string;
  tenant_id: string;
  country: string;
  region: string | null;
  rate_bps: number;
  name: string;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type CartTables = {
  'cart.settings': SettingsTable;
  'cart.carts': CartsTable;
  'cart.lines': LinesTable;
  'cart.shipping_options': ShippingOptionsTable;
  'cart.tax_rates': TaxRatesTable;
};

export type CartDb = Kysely<CartTables>;
/** A transaction of one tenant (withTenant) over the cart's tables. */
export type CartTrx = Transaction<CartTables>;
