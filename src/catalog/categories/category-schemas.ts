import { Type } from 'typebox';
import { CategoryRef, HANDLE_PATTERN, Handle } from '../products/product-schemas.ts';

/** At most this many categories per tenant, this many levels deep. */
export const MAX_CATEGORIES = 2_000;
export const MAX_DEPTH = 10;

export const CategoryBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    handle: Type.Optional({
      ...Handle,
      description: 'URL slug, unique per tenant; default on create: from the name',
    }),
    description: Type.Optional(Type.String({ maxLength: 5000 })),
    parentId: Type.Optional(
      Type.Union([Type.String({ format: 'uuid' }), Type.Null()], {
        description: 'The parent category; null or absent: a root category',
      }),
    ),
    position: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'Order among its siblings (default 0)' }),
    ),
  },
  { additionalProperties: false },
);

export const CategoryView = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    parentId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
    name: Type.String(),
    handle: Type.String(),
    description: Type.String(),
    position: Type.Integer(),
    depth: Type.Integer({ description: 'Root categories are at depth 0' }),
    path: Type.Array(CategoryRef, { description: 'The breadcrumb: root first, this category last' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'Category' },
);

/** A category by its id or its handle. */
export const CategoryParams = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 255,
    pattern: `^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|${HANDLE_PATTERN.slice(1, -1)})$`,
    description: 'The category id or its handle',
  }),
});

/** GET /categories: a page of the tree (README "Categories"). */
export const CategoryListQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 200, description: 'Page size (default 100, at most 200)' }),
    ),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 100, description: 'The nextCursor of the previous page' }),
    ),
    parentId: Type.Optional(
      Type.String({ format: 'uuid', description: "Only this category's children (one level of the tree)" }),
    ),
  },
  { additionalProperties: false },
);

export const CategoryPageView = Type.Object({
  items: Type.Array(CategoryView),
  nextCursor: Type.Union([Type.String(), Type.Null()], {
    description: 'The cursor of the next page; null on the last one',
  }),
});
