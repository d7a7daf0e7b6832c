import { Type } from 'typebox';
import { Nullable, SECURED, STOREFRONT_SECURED } from '../platform/http/index.ts';

/** Storefront routes: anonymous shoppers (X-Tenant, X-Cart-Token) or a credential. */
export const STOREFRONT_SECURITY = STOREFRONT_SECURED;
export const STAFF_SECURITY = SECURED as Record<string, string[]>[];

const Uuid = Type.String({ format: 'uuid' });
export const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code, e.g. EUR' });
const Country = Type.String({
  pattern: '^[A-Za-z]{2}$',
  description: 'ISO 3166-1 alpha-2 code; stored uppercase',
});
const Money = Type.Integer({ minimum: 0, description: 'Integer minor units of the currency' });
const Text = (maxLength: number) => Type.String({ minLength: 1, maxLength });

export const IdParams = Type.Object({ id: Uuid });
export const ItemParams = Type.Object({ itemId: Uuid });

export const CreateCartBody = Type.Object(
  { currency: Type.Optional(Currency) },
  { additionalProperties: false },
);

export const AddItemBody = Type.Object(
  {
    variantId: Type.Optional(Uuid),
    sku: Type.Optional(Text(200)),
    quantity: Type.Integer({ minimum: 1, maximum: 1000 }),
    currency: Type.Optional(Currency),
  },
  { additionalProperties: false, description: 'Exactly one of variantId and sku' },
);

export const UpdateItemBody = Type.Object(
  { quantity: Type.Integer({ minimum: 0, maximum: 1000, description: '0 removes the line' }) },
  { additionalProperties: false },
);

export const InlineAddress = Type.Object(
  {
    recipient: Text(200),
    line1: Text(200),
    line2: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
    city: Text(100),
    region: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
    postalCode: Type.String({ minLength: 1, maxLength: 20 }),
    country: Country,
    phone: Type.Optional(Nullable(Type.String({ pattern: '^\\+[1-9]\\d{6,14}$' }))),
  },
  { additionalProperties: false },
);
const AddressChoice = Type.Union([
  Type.Object({ addressId: Uuid }, { additionalProperties: false }),
  InlineAddress,
  Type.Null(),
]);
export const AddressesBody = Type.Object(
  { shipping: Type.Optional(AddressChoice), billing: Type.Optional(AddressChoice) },
  {
    additionalProperties: false,
    description:
      'Each: {addressId} from your address book, an address inline (checked as the address book checks it), or null to clear; absent keeps it',
  },
);

export const ShippingChoiceBody = Type.Object(
  { shippingOptionId: Nullable(Uuid) },
  { additionalProperties: false },
);

/** An address as a cart holds it (and the order copied from it). */
export const AddressView = Type.Object({
  recipient: Type.String(),
  line1: Type.String(),
  line2: Nullable(Type.String()),
  city: Type.String(),
  region: Nullable(Type.String()),
  postalCode: Type.String(),
  country: Type.String(),
  phone: Nullable(Type.String()),
  addressId: Nullable(Type.String()),
});

const LineView = Type.Object({
  id: Uuid,
  variantId: Uuid,
  productId: Uuid,
  sku: Type.String(),
  productTitle: Type.String(),
  variantTitle: Type.String(),
  options: Type.Record(Type.String(), Type.String()),
  image: Nullable(Type.String()),
  quantity: Type.Integer(),
  unitPrice: Money,
  subtotal: Money,
  tax: Money,
  total: Money,
  priceChanged: Nullable(Type.Object({ from: Money, to: Money })),
  problem: Nullable(
    Type.Object({
      code: Type.String(),
      detail: Type.String(),
      available: Type.Optional(Type.Integer()),
    }),
  ),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const CartView = Type.Object(
  {
    id: Uuid,
    customerId: Nullable(Uuid),
    currency: Nullable(Type.String()),
    lines: Type.Array(LineView),
    itemCount: Type.Integer(),
    shippingAddress: Nullable(AddressView),
    billingAddress: Nullable(AddressView),
    shippingOption: Nullable(Type.Object({ id: Uuid, name: Type.String(), price: Money })),
    totals: Type.Object({
      subtotal: Money,
      discount: Money,
      shipping: Money,
      tax: Money,
      total: Money,
      taxRateBps: Type.Integer(),
      pricesIncludeTax: Type.Boolean(),
    }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { title: 'Cart' },
);

export const NewCartView = Type.Object(
  {
    cart: CartView,
    token: Type.Optional(
      Type.String({ description: 'Guests only, shown this once: send it back in X-Cart-Token' }),
    ),
  },
  { title: 'NewCart' },
);

export const MergeView = Type.Object({
  cart: CartView,
  adjustments: Type.Array(
    Type.Object({
      variantId: Type.String(),
      sku: Type.String(),
      requested: Type.Integer(),
      quantity: Type.Integer(),
      reason: Type.String(),
    }),
  ),
});

export const AvailableShippingOptions = Type.Object({
  items: Type.Array(Type.Object({ id: Uuid, name: Type.String(), price: Money, currency: Type.String() })),
});

export { Country, Nullable, Text, Uuid };
