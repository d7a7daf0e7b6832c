import { type Static, Type } from 'typebox';
import { Nullable, STOREFRONT_SECURED } from '../../platform/http/index.ts';
import { SORTS } from './search-cursor.ts';

/** FastifySchema's security shape (anonymous shoppers too: security is optional here). */
export const SECURITY = STOREFRONT_SECURED;

export const MAX_Q = 200;
const Uuid = Type.String({ format: 'uuid' });

/** A query parameter that may repeat (?tag=a&tag=b): one string or several. */
const Repeated = (item: ReturnType<typeof Type.String>, maxItems: number, description: string) =>
  Type.Union([item, Type.Array(item, { maxItems })], { description });

export const HANDLE_OR_ID =
  '^[a-z0-9]+(?:-[a-z0-9]+)*$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

export const ListQuery = Type.Object(
  {
    q: Type.Optional(
      Type.String({
        maxLength: MAX_Q,
        description:
          'Words to search for (title, tags, categories, description, attributes); the last one also as a prefix; typos are corrected when little matches',
      }),
    ),
    category: Type.Optional(
      Repeated(
        Type.String({ minLength: 1, maxLength: 255, pattern: HANDLE_OR_ID }),
        10,
        'Category id or handle; products in it or below it. Repeat for any of several',
      ),
    ),
    tag: Type.Optional(
      Repeated(
        Type.String({ minLength: 1, maxLength: 100 }),
        10,
        'Products with this tag (case-insensitive). Repeat: all of them',
      ),
    ),
    attribute: Type.Optional(
      Repeated(
        Type.String({ minLength: 3, maxLength: 230, pattern: '^(?:[^:=\\\\]|\\\\[:\\\\]){1,64}:.{1,100}$' }),
        20,
        'name:value, for example colour:Black (an attribute or variant option; a name holding : or \\ writes them \\: and \\\\, as in size\\:eu:42). Values of one name: any; different names: all',
      ),
    ),
    currency: Type.Optional(
      Type.String({
        pattern: '^[A-Z]{3}$',
        description: 'ISO 4217; needed by minPrice, maxPrice, price sorts and price facets',
      }),
    ),
    minPrice: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000_000_000,
        description: 'Lowest variant price at least this (minor units)',
      }),
    ),
    maxPrice: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000_000_000,
        description: 'Lowest variant price at most this (minor units)',
      }),
    ),
    inStock: Type.Optional(
      Type.Boolean({ description: 'Only products with (true) or without (false) a variant in stock' }),
    ),
    status: Type.Optional(
      Type.Enum(['draft', 'active', 'archived'], {
        description: 'Staff only (shoppers see active products)',
      }),
    ),
    sort: Type.Optional(
      Type.Enum([...SORTS], {
        description: 'Default: relevance with q, else newest (relevance without q is newest)',
      }),
    ),
    facets: Type.Optional(
      Type.Boolean({
        description: 'Also count the matches per category, price band, attribute value and stock',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 24)' })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 1000, description: 'The nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const PriceRange = Type.Object({ min: Type.Integer(), max: Type.Integer() });

export const ProductListItem = Type.Object(
  {
    id: Uuid,
    handle: Type.String(),
    title: Type.String(),
    status: Type.Enum(['draft', 'active', 'archived']),
    tags: Type.Array(Type.String()),
    image: Nullable(Type.Object({ url: Type.String(), alt: Type.String() })),
    categories: Type.Array(Type.Object({ id: Uuid, handle: Type.String(), name: Type.String() })),
    prices: Type.Record(Type.String(), PriceRange, {
      description: 'Lowest and highest variant price per currency',
    }),
    variantCount: Type.Integer(),
    inStock: Type.Boolean(),
    publishedAt: Nullable(Type.String({ format: 'date-time' })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'ProductListItem' },
);

export type ListItem = Static<typeof ProductListItem>;
/** A search document's summary column: the list item but for inStock (its own column). */
export type ProductSummary = Omit<ListItem, 'inStock'>;

const Facets = Type.Object(
  {
    matched: Type.Integer({ description: 'Products counted' }),
    exact: Type.Boolean({ description: 'False when more products match than are counted (README: limits)' }),
    categories: Type.Array(
      Type.Object({
        id: Uuid,
        handle: Type.String(),
        name: Type.String(),
        parentId: Nullable(Uuid),
        count: Type.Integer(),
      }),
    ),
    prices: Type.Array(
      Type.Object({
        currency: Type.String(),
        min: Type.Integer(),
        max: Nullable(Type.Integer()),
        count: Type.Integer(),
      }),
      {
        description:
          'Bands of the lowest variant price, minor units, min inclusive, max exclusive (with ?currency)',
      },
    ),
    attributes: Type.Array(
      Type.Object({
        name: Type.String(),
        values: Type.Array(Type.Object({ value: Type.String(), count: Type.Integer() })),
      }),
    ),
    inStock: Type.Object({ inStock: Type.Integer(), outOfStock: Type.Integer() }),
  },
  { title: 'ProductFacets' },
);

export const ProductPage = Type.Object({
  items: Type.Array(ProductListItem),
  nextCursor: Nullable(Type.String()),
  corrections: Type.Optional(
    Type.Record(Type.String(), Type.Array(Type.String()), {
      description: 'Typo corrections searched too: query word -> dictionary words',
    }),
  ),
  facets: Type.Optional(Facets),
});

export const SuggestQuery = Type.Object(
  {
    q: Type.String({ minLength: 1, maxLength: 100, description: 'What has been typed so far' }),
  },
  { additionalProperties: false },
);

export const Suggestions = Type.Object({
  terms: Type.Array(Type.String(), { description: 'The query with its last word completed' }),
  products: Type.Array(
    Type.Object({
      id: Uuid,
      handle: Type.String(),
      title: Type.String(),
      image: Nullable(Type.Object({ url: Type.String(), alt: Type.String() })),
      prices: Type.Record(Type.String(), PriceRange),
    }),
  ),
});

export const RelatedParams = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: HANDLE_OR_ID,
    description: 'The product id or its handle',
  }),
});

export const RelatedQuery = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 24, description: 'How many (Default: 8)' })) },
  { additionalProperties: false },
);

export const RelatedList = Type.Object({ items: Type.Array(ProductListItem) });
