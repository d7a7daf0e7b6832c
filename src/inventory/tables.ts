import type { Generated, Kysely, Transaction } from 'kysely';

/**
 * Bound of on hand and of available (on hand - reserved) either way, well inside PostgreSQL's
 * integer: a backorder may drive available below zero, but never into an integer overflow.
 */
export const STOCK_LIMIT = 1_000_000_000;

/** `transfer` (migration 0028): units moved between reservations, deltas 0. */
export type LedgerKind =
  | 'receive'
  | 'adjust'
  | 'reserve'
  | 'release'
  | 'commit'
  | 'expire'
  | 'return'
  | 'transfer';
export type ReservationStatus = 'active' | 'committed' | 'released' | 'expired' | 'returned';

export type LocationsTable = {
  id: string;
  tenant_id: string;
  name: string;
  code: string | null;
  is_default: boolean;
  created_at: Date | string;
  updated_at: Date | string;
};

export type ItemsTable = {
  id: string;
  tenant_id: string;
  location_id: string;
  variant_id: string;
  product_id: string | null;
  sku: string | null;
  on_hand: number;
  reserved: number;
  available: Generated<number>;
  low_stock_threshold: number;
  allow_backorder: boolean;
  low_stock_alerted: boolean;
  created_at: Date | string;
  updated_at: Date | string;
};

export type ReservationsTable = {
  id: string;
  tenant_id: string;
  key: string;
  status: ReservationStatus;
  request_hash: string;
  reference: string | null;
  actor: string;
  expires_at: Date | string;
  created_at: Date | string;
  updated_at: Date | string;
};

export type ReservationLinesTable = {
  reservation_id: string;
  tenant_id: string;
  item_id: string;
  variant_id: string;
  location_id: string;
  quantity: number;
};

export type LedgerTable = {
  id: string;
  tenant_id: string;
  item_id: string;
  kind: LedgerKind;
  quantity: number;
  on_hand_delta: number;
  reserved_delta: number;
  on_hand_after: number;
  reserved_after: number;
  reason: string | null;
  actor: string;
  reference: string | null;
  reservation_key: string | null;
  created_at: Date | string;
};

export type InventoryTables = {
  'inventory.locations': LocationsTable;
  'inventory.items': ItemsTable;
  'inventory.reservations': ReservationsTable;
  'inventory.reservation_lines': ReservationLinesTable;
  'inventory.ledger': LedgerTable;
};

export type InventoryDb = Kysely<InventoryTables>;
export type InventoryTrx = Transaction<InventoryTables>;
