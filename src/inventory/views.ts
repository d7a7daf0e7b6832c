import type { Selectable } from 'kysely';
import { isoTime as iso } from '../platform/db/index.ts';
import type { ItemsTable, LedgerKind, LocationsTable, ReservationStatus } from './tables.ts';

/** Stock of one variant at one location, as every inventory route answers it. */
export type InventoryItem = {
  id: string;
  variantId: string;
  productId: string | null;
  sku: string | null;
  locationId: string;
  onHand: number;
  reserved: number;
  available: number;
  lowStockThreshold: number;
  allowBackorder: boolean;
  /** available is at or below lowStockThreshold. */
  lowStock: boolean;
  createdAt: string;
  updatedAt: string;
};

export type Location = {
  id: string;
  name: string;
  code: string | null;
  isDefault: boolean;
  createdAt: string;
  updatedAt: string;
};

export type Availability = {
  variantId: string;
  onHand: number;
  reserved: number;
  available: number;
  allowBackorder: boolean;
};

export type ReservationLine = { variantId: string; quantity: number };

export type Reservation = {
  key: string;
  status: ReservationStatus;
  lines: Array<{ variantId: string; locationId: string; quantity: number }>;
  reference: string | null;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
};

export type LedgerEntry = {
  id: string;
  itemId: string;
  kind: LedgerKind;
  quantity: number;
  onHandDelta: number;
  reservedDelta: number;
  onHandAfter: number;
  reservedAfter: number;
  reason: string | null;
  actor: string;
  reference: string | null;
  reservationKey: string | null;
  createdAt: string;
};

type ItemRow = Omit<Selectable<ItemsTable>, 'available'> & { available?: number };

export function toItem(row: ItemRow): InventoryItem {
  const available = row.on_hand - row.reserved;
  return {
    id: row.id,
    variantId: row.variant_id,
    productId: row.product_id,
    sku: row.sku,
    locationId: row.location_id,
    onHand: row.on_hand,
    reserved: row.reserved,
    available,
    lowStockThreshold: row.low_stock_threshold,
    allowBackorder: row.allow_backorder,
    lowStock: available <= row.low_stock_threshold,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

export function toLocation(row: Selectable<LocationsTable>): Location {
  return {
    id: row.id,
    name: row.name,
    code: row.code,
    isDefault: row.is_default,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}
