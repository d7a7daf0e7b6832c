import { Type } from 'typebox';
import { Nullable, SECURED, STOREFRONT_SECURED } from '../platform/http/index.ts';

export const SECURITY = SECURED as Record<string, string[]>[];
/** Routes shoppers may call anonymously (X-Tenant) or with a credential: security is optional. */
export const OPTIONAL_SECURITY = STOREFRONT_SECURED;

const Uuid = Type.String({ format: 'uuid' });
const Quantity = Type.Integer({ minimum: 0, maximum: 1_000_000_000 });
const Sku = Type.String({ minLength: 1, maxLength: 100 });
const Reason = Type.String({
  minLength: 1,
  maxLength: 500,
  description: 'Why the stock changed (kept in the ledger)',
});
const Reference = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'What the movement belongs to: an order, a cart, a purchase order',
});
export const ReservationKey = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'Idempotency key of the reservation (a cart or checkout id): visible ASCII',
});
const Ttl = Type.Integer({ minimum: 1, maximum: 30 * 86_400, description: 'Seconds the stock is held' });

export const IdParams = Type.Object({ id: Uuid });
export const KeyParams = Type.Object({ key: ReservationKey });
export const ProductParams = Type.Object({ productId: Uuid });

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'The nextCursor of the previous page' }),
  ),
};

export function PageOf<T extends Parameters<typeof Type.Array>[0]>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String()) });
}

export const ItemView = Type.Object(
  {
    id: Uuid,
    variantId: Uuid,
    productId: Nullable(Uuid),
    sku: Nullable(Type.String()),
    locationId: Uuid,
    onHand: Type.Integer(),
    reserved: Type.Integer(),
    available: Type.Integer({ description: 'onHand - reserved' }),
    lowStockThreshold: Type.Integer(),
    allowBackorder: Type.Boolean(),
    lowStock: Type.Boolean({ description: 'available is at or below lowStockThreshold' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'InventoryItem' },
);

export const NewItemBody = Type.Object(
  {
    variantId: Uuid,
    productId: Type.Optional(Nullable(Uuid)),
    sku: Type.Optional(Nullable(Sku)),
    locationId: Type.Optional(Uuid),
    onHand: Quantity,
    lowStockThreshold: Type.Optional(Quantity),
    allowBackorder: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const ItemSettingsBody = Type.Object(
  { lowStockThreshold: Type.Optional(Quantity), allowBackorder: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

export const StockBody = Type.Object(
  {
    set: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'The new on hand' })),
    adjust: Type.Optional(
      Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000, description: 'Added to on hand' }),
    ),
    kind: Type.Optional(
      Type.Enum(['receive', 'adjust', 'return'], {
        description: 'The ledger kind (Default: adjust); receive and return only add stock',
      }),
    ),
    reason: Reason,
    reference: Type.Optional(Reference),
  },
  { additionalProperties: false, description: 'Exactly one of set and adjust' },
);

export const ItemListQuery = Type.Object(
  {
    ...PageQuery,
    variantId: Type.Optional(Uuid),
    productId: Type.Optional(Uuid),
    sku: Type.Optional(Sku),
    locationId: Type.Optional(Uuid),
    lowStock: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const LedgerView = Type.Object(
  {
    id: Uuid,
    itemId: Uuid,
    kind: Type.Enum(['receive', 'adjust', 'reserve', 'release', 'commit', 'expire', 'return', 'transfer']),
    quantity: Type.Integer(),
    onHandDelta: Type.Integer(),
    reservedDelta: Type.Integer(),
    onHandAfter: Type.Integer(),
    reservedAfter: Type.Integer(),
    reason: Nullable(Type.String()),
    actor: Type.String(),
    reference: Nullable(Type.String()),
    reservationKey: Nullable(Type.String()),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { title: 'InventoryLedgerEntry' },
);

export const ReservationView = Type.Object(
  {
    key: Type.String(),
    status: Type.Enum(['active', 'committed', 'released', 'expired', 'returned']),
    lines: Type.Array(Type.Object({ variantId: Uuid, locationId: Uuid, quantity: Type.Integer() })),
    reference: Nullable(Type.String()),
    expiresAt: Type.String({ format: 'date-time' }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'InventoryReservation' },
);

export const ReserveBody = Type.Object(
  {
    key: ReservationKey,
    lines: Type.Array(
      Type.Object(
        { variantId: Uuid, quantity: Type.Integer({ minimum: 1, maximum: 1_000_000 }) },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 100 },
    ),
    ttlSeconds: Type.Optional(Ttl),
    reference: Type.Optional(Reference),
  },
  { additionalProperties: false },
);

export const KeyBody = Type.Object({ key: ReservationKey }, { additionalProperties: false });
export const ExtendBody = Type.Object(
  { key: ReservationKey, ttlSeconds: Type.Optional(Ttl) },
  { additionalProperties: false },
);

export const LocationView = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    code: Nullable(Type.String()),
    isDefault: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'InventoryLocation' },
);

const LocationCode = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' });
export const NewLocationBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    code: Type.Optional(Nullable(LocationCode)),
    isDefault: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export const LocationPatchBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    code: Type.Optional(Nullable(LocationCode)),
    isDefault: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const ProductAvailabilityView = Type.Object(
  {
    productId: Uuid,
    available: Type.Integer({ description: 'Summed over the variants (negative ones count as 0)' }),
    inStock: Type.Boolean(),
    variants: Type.Array(
      Type.Object({
        variantId: Uuid,
        available: Type.Integer(),
        inStock: Type.Boolean({ description: 'available > 0, or backorders allowed' }),
        allowBackorder: Type.Boolean(),
      }),
    ),
  },
  { title: 'ProductAvailability' },
);
