export { type Drift, verifyStock } from './ledger-store.ts';
export {
  createInventory,
  type InventoryApi,
  type InventoryModule,
  type InventoryOptions,
  type ReservationOperations,
} from './module.ts';
export type { TransferInput } from './reservation-service.ts';
export type { InventoryTables } from './tables.ts';
export type {
  Availability,
  InventoryItem,
  LedgerEntry,
  Location,
  Reservation,
  ReservationLine,
} from './views.ts';
