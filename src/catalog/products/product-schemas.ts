import { Type } from 'typebox';
import { Nullable, SECURED, STOREFRONT_SECURED } from '../../platform/http/index.ts';

/** Limits on what one product may hold (hostile input is bounded everywhere). */
export const LIMITS = {
  variants: 100,
  tags: 50,
  categories: 50,
  images: 50,
  attributes: 100,
  /** Serialized attributes, in bytes of JSON text. */
  attributesBytes: 16_384,
  attributesDepth: 5,
  options: 10,
  currencies: 50,
} as const;

/** FastifySchema's security shape; SECURED's inferred type does not match it, its value does. */
export const SECURITY = SECURED as Record<string, string[]>[];
/** Storefront routes: a credential is optional (an anonymous shopper names the store with X-Tenant). */
export const STOREFRONT_SECURITY = STOREFRONT_SECURED;

export const HANDLE_PATTERN = '^[a-z0-9]+(?:-[a-z0-9]+)*$';
const HANDLE_DESCRIPTION =
  'URL slug, unique per tenant: lowercase letters and digits separated by single dashes';
export const Handle = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: HANDLE_PATTERN,
  description: HANDLE_DESCRIPTION,
});
// Printable ASCII with no leading or trailing space.
const Sku = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?$',
  description: 'Stock keeping unit, unique per tenant: printable ASCII, no leading or trailing space',
});
const Money = Type.Integer({ minimum: 0, maximum: 1_000_000_000_000, description: 'Integer minor units' });
const Prices = Type.Record(Type.String({ pattern: '^[A-Z]{3}$' }), Money, {
  additionalProperties: false,
  maxProperties: LIMITS.currencies,
  description: 'ISO 4217 currency code -> price in integer minor units, for example {"USD": 1999}',
});
const Options = Type.Record(
  Type.String({ pattern: '^[^\\x00-\\x1f]{1,50}$' }),
  Type.String({ minLength: 1, maxLength: 100 }),
  {
    additionalProperties: false,
    maxProperties: LIMITS.options,
    description: 'Option name -> value, for example {"size": "M", "colour": "red"}',
  },
);
const Status = Type.Enum(['draft', 'active', 'archived']);
const Image = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'An http or https URL' }),
    alt: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
const Seo = Type.Object(
  {
    title: Type.Optional(Type.String({ maxLength: 255 })),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
const Uuid = Type.String({ format: 'uuid' });

const variantFields = {
  sku: Sku,
  title: Type.Optional(
    Type.String({ maxLength: 255, description: 'Default: the option values joined by " / "' }),
  ),
  options: Type.Optional(Options),
  prices: Prices,
  compareAtPrices: Type.Optional(Prices),
  weightGrams: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 10_000_000 }), Type.Null()])),
  barcode: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 64 }), Type.Null()])),
};

/** POST /products/{id}/variants and PUT /products/{id}/variants/{variantId}. */
export const NewVariantBody = Type.Object(variantFields, { additionalProperties: false });

/** A variant inside a product body. */
export const VariantBody = Type.Object(
  {
    id: Type.Optional({
      ...Uuid,
      description: 'In a product PUT: the variant to keep (else variants are matched by SKU)',
    }),
    ...variantFields,
  },
  { additionalProperties: false },
);

const productFields = {
  title: Type.String({ minLength: 1, maxLength: 255 }),
  handle: Type.Optional({
    ...Handle,
    description: `${HANDLE_DESCRIPTION}. Default on create: made from the title`,
  }),
  description: Type.Optional(Type.String({ maxLength: 20_000 })),
  status: Type.Optional({ ...Status, description: 'Default draft; shoppers see active products only' }),
  categoryIds: Type.Optional(Type.Array(Uuid, { maxItems: LIMITS.categories, uniqueItems: true })),
  categoryHandles: Type.Optional(
    Type.Array(Handle, {
      maxItems: LIMITS.categories,
      uniqueItems: true,
      description: 'Categories by handle (for imports); joined with categoryIds',
    }),
  ),
  tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: LIMITS.tags })),
  attributes: Type.Optional(
    Type.Record(Type.String({ pattern: '^[^\\x00-\\x1f]{1,100}$' }), Type.Unknown(), {
      additionalProperties: false,
      maxProperties: LIMITS.attributes,
      description: `Free-form JSON (at most ${LIMITS.attributesBytes} bytes, ${LIMITS.attributesDepth} levels deep)`,
    }),
  ),
  images: Type.Optional(Type.Array(Image, { maxItems: LIMITS.images })),
  seo: Type.Optional(Seo),
};

/** POST /products, PUT /products/{id} and each batch row. */
export const ProductBody = Type.Object(
  {
    ...productFields,
    variants: Type.Optional(
      Type.Array(VariantBody, {
        minItems: 1,
        maxItems: LIMITS.variants,
        description: 'Required on create; on PUT, absent keeps the variants as they are',
      }),
    ),
  },
  { additionalProperties: false },
);

export const VariantView = Type.Object(
  {
    id: Uuid,
    productId: Uuid,
    sku: Type.String(),
    title: Type.String(),
    options: Type.Record(Type.String(), Type.String()),
    prices: Type.Record(Type.String(), Type.Integer()),
    compareAtPrices: Type.Record(Type.String(), Type.Integer()),
    weightGrams: Nullable(Type.Integer()),
    barcode: Nullable(Type.String()),
    position: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'Variant' },
);

export const CategoryRef = Type.Object({ id: Uuid, name: Type.String(), handle: Type.String() });

export const ProductView = Type.Object(
  {
    id: Uuid,
    handle: Type.String(),
    title: Type.String(),
    description: Type.String(),
    status: Status,
    tags: Type.Array(Type.String()),
    attributes: Type.Record(Type.String(), Type.Unknown()),
    images: Type.Array(Type.Object({ url: Type.String(), alt: Type.String() })),
    seo: Type.Object({ title: Type.Optional(Type.String()), description: Type.Optional(Type.String()) }),
    categories: Type.Array(CategoryRef),
    variants: Type.Array(VariantView),
    publishedAt: Nullable(Type.String({ format: 'date-time' })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    version: Type.Integer({ description: 'Goes up by one on every change; send it back as If-Match' }),
  },
  { title: 'Product' },
);

/** A product by its id or by its handle. */
export const ProductParams = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: `^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|${HANDLE_PATTERN.slice(1, -1)})$`,
    description: 'The product id or its handle',
  }),
});

export const VariantParams = Type.Object({ ...ProductParams.properties, variantId: Uuid });

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      maxLength: 40,
      description: 'The version the change is based on ("3" or W/"3"); else 412',
    }),
  ),
});
