import { createHash } from 'node:crypto';
import type { EventMeta } from '../platform/events/index.ts';
import type { ReservationStatus } from './tables.ts';
import type { Reservation, ReservationLine } from './views.ts';

/** One request to the reservation batcher; all of a flush's operations share one transaction. */
export type ReservationOp =
  | {
      kind: 'reserve';
      key: string;
      /** Merged (one per variant) and sorted by variant id. */
      lines: ReservationLine[];
      ttlSeconds: number;
      reference: string | null;
      actor: string;
      /** Hash of the lines: the same key with other lines is IDEMPOTENCY_KEY_REUSED. */
      hash: string;
    }
  | { kind: 'release' | 'commit' | 'return'; key: string; actor: string }
  | { kind: 'extend'; key: string; ttlSeconds: number; actor: string }
  /** The sweeper's: the reservation was selected as past its expiry, under its row lock. */
  | { kind: 'expire'; key: string; actor: string }
  | {
      kind: 'transfer';
      /** The reservation the units come from (`from`): the batcher orders and locks by it and by `to`. */
      key: string;
      /** The reservation that takes them: created when absent. */
      to: string;
      /** Merged and sorted as reserve's; null moves everything `key` holds. */
      lines: ReservationLine[] | null;
      /** The expiry of a `to` this transfer creates. */
      ttlSeconds: number;
      reference: string | null;
      actor: string;
      /** transferHash(key, lines): stored on a `to` this transfer creates, to answer a replay. */
      hash: string;
    };

/** Every reservation key an operation locks (a transfer's two, else its one). */
export function opKeys(op: ReservationOp): string[] {
  return op.kind === 'transfer' ? [op.key, op.to] : [op.key];
}

/** What an operation came to: the reservation, and for reserve whether this call created it. */
export type OpResult = { reservation: Reservation; created: boolean };

export type Submitted = { tenantId: string; op: ReservationOp; meta: EventMeta | undefined };

/** One line of a stored reservation: which item holds how much of it. */
export type HeldLine = { itemId: string; variantId: string; locationId: string; quantity: number };

/** A reservation as the batch holds it while applying operations. */
export type ReservationState = {
  id: string;
  key: string;
  status: ReservationStatus;
  requestHash: string;
  reference: string | null;
  actor: string;
  expiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
  lines: HeldLine[];
  /** Inserted by this batch. */
  fresh: boolean;
  /** Status or expiry changed by this batch (an update for stored ones). */
  changed: boolean;
  /**
   * The lines as stored (item id → quantity) when a transfer changes those of a stored
   * reservation: the batch then writes the difference (changed, added and deleted lines).
   */
  storedLines?: Map<string, number> | undefined;
};

/** An item row, locked by the batch, with its running counters. */
export type ItemState = {
  id: string;
  variantId: string;
  locationId: string;
  atDefault: boolean;
  onHand: number;
  reserved: number;
  allowBackorder: boolean;
  threshold: number;
  alerted: boolean;
  /** The counters as locked, to write the summed delta. */
  lockedOnHand: number;
  lockedReserved: number;
  productId: string | null;
  sku: string | null;
  createdAt: Date | string;
};

/** Lines with one entry per variant (quantities summed), sorted by variant id. */
export function mergeLines(lines: ReservationLine[]): ReservationLine[] {
  const sums = new Map<string, number>();
  for (const line of lines) sums.set(line.variantId, (sums.get(line.variantId) ?? 0) + line.quantity);
  return [...sums.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([variantId, quantity]) => ({ variantId, quantity }));
}

/** The identity of a request's lines (merged), compared when a key comes again. */
export function linesHash(merged: ReservationLine[]): string {
  return createHash('sha256')
    .update(JSON.stringify(merged.map((l) => [l.variantId, l.quantity])))
    .digest('hex');
}

/**
 * The identity of a transfer request (its `from` and merged lines, or everything): stored as the
 * request hash of the reservation it creates, so the same transfer again answers that reservation.
 * Prefixed, so it never equals a reserve's hash of lines.
 */
export function transferHash(from: string, merged: ReservationLine[] | null): string {
  return createHash('sha256')
    .update(JSON.stringify(['transfer', from, merged ? merged.map((l) => [l.variantId, l.quantity]) : null]))
    .digest('hex');
}

export function toReservation(state: ReservationState): Reservation {
  return {
    key: state.key,
    status: state.status,
    lines: state.lines.map((l) => ({
      variantId: l.variantId,
      locationId: l.locationId,
      quantity: l.quantity,
    })),
    reference: state.reference,
    expiresAt: state.expiresAt.toISOString(),
    createdAt: state.createdAt.toISOString(),
    updatedAt: state.updatedAt.toISOString(),
  };
}
