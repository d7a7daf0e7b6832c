import type { DomainEvent } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { itemEvent, reservationEvent } from './inventory-events.ts';
import type { Movement } from './ledger-store.ts';
import { lowStockTransition } from './low-stock.ts';
import {
  type HeldLine,
  type ItemState,
  type OpResult,
  type ReservationOp,
  type ReservationState,
  toReservation,
} from './reservation-ops.ts';
import { applyTransfer } from './reservation-transfer.ts';
import { type LedgerKind, STOCK_LIMIT } from './tables.ts';
import { toItem } from './views.ts';

/** The locked rows a batch works on and the time it runs at. */
export type BatchState = {
  tenantId: string;
  now: Date;
  items: Map<string, ItemState>;
  reservations: Map<string, ReservationState>;
};

/** What applying a batch's operations came to: one answer per operation and what to write. */
export type BatchOutcome = {
  answers: (OpResult | { error: AppError })[];
  movements: Movement[];
  /** Events per operation (index into the batch), published with that operation's meta. */
  events: DomainEvent[][];
  /** Items whose counters or low-stock flag changed. */
  touched: Set<string>;
};

const FINISH_KIND = {
  committed: 'commit',
  released: 'release',
  expired: 'expire',
  returned: 'return',
} as const satisfies Record<string, LedgerKind>;

/** A batch's locked items by variant, made once per batch (its items are changed in place, never replaced). */
const byVariant = new WeakMap<Map<string, ItemState>, Map<string, ItemState[]>>();

function itemsOfVariant(state: BatchState, variantId: string): ItemState[] {
  let index = byVariant.get(state.items);
  if (!index) {
    index = new Map();
    for (const item of state.items.values()) {
      const list = index.get(item.variantId);
      if (list) list.push(item);
      else index.set(item.variantId, [item]);
    }
    byVariant.set(state.items, index);
  }
  return index.get(variantId) ?? [];
}

/**
 * Where a variant's stock is taken from: the default location first, then the most available.
 * Only the variant's items are sorted (a line used to walk every item of the batch: 100 lines over
 * 20,000 locked items, times the batch's operations, held the event loop for seconds).
 */
function candidates(state: BatchState, variantId: string): ItemState[] {
  return [...itemsOfVariant(state, variantId)].sort(
    (a, b) =>
      Number(b.atDefault) - Number(a.atDefault) ||
      b.onHand - b.reserved - (a.onHand - a.reserved) ||
      (a.id < b.id ? -1 : 1),
  );
}

/**
 * Applies the operations in arrival order against the running counters of the locked items,
 * each all or nothing, and returns one answer per operation plus the ledger entries and events.
 * Nothing is written here: the caller writes the summed changes in the batch's transaction.
 */
export function applyOps(state: BatchState, ops: ReservationOp[]): BatchOutcome {
  const outcome: BatchOutcome = { answers: [], movements: [], events: [], touched: new Set() };
  const lastOpOf = new Map<string, number>();
  for (const [index, op] of ops.entries()) {
    const events: DomainEvent[] = [];
    outcome.events.push(events);
    try {
      outcome.answers.push(applyOne(state, op, outcome, events, (itemId) => lastOpOf.set(itemId, index)));
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      outcome.answers.push({ error });
    }
  }
  // Each item the batch changed is announced once, on the batch's final counters: low-stock on a
  // crossing (one event per crossing), else stock-changed. Both carry the item as it now is, so a
  // subscriber keeping levels (the catalog's in-stock flag) applies snapshots ordered by the
  // item's updatedAt, never deltas whose order against other events of the item is not kept.
  for (const itemId of [...outcome.touched].sort()) {
    const item = state.items.get(itemId)!;
    const low = lowStockTransition(item.onHand - item.reserved, item.threshold, item.alerted);
    item.alerted = low.alerted;
    const verb = low.publish ? 'low-stock' : 'stock-changed';
    const availableBefore = item.lockedOnHand - item.lockedReserved;
    outcome.events[lastOpOf.get(itemId)!]!.push(itemEvent(verb, itemView(state, item), { availableBefore }));
  }
  return outcome;
}

function itemView(state: BatchState, item: ItemState) {
  return toItem({
    id: item.id,
    tenant_id: state.tenantId,
    location_id: item.locationId,
    variant_id: item.variantId,
    product_id: item.productId,
    sku: item.sku,
    on_hand: item.onHand,
    reserved: item.reserved,
    low_stock_threshold: item.threshold,
    allow_backorder: item.allowBackorder,
    low_stock_alerted: item.alerted,
    created_at: item.createdAt,
    updated_at: state.now,
  });
}

function applyOne(
  state: BatchState,
  op: ReservationOp,
  outcome: BatchOutcome,
  events: DomainEvent[],
  touch: (itemId: string) => void,
): OpResult {
  const move = (res: ReservationState, kind: LedgerKind, actor: string, onHand: number, reserved: number) => {
    for (const line of res.lines) {
      const item = state.items.get(line.itemId)!;
      item.onHand += onHand * line.quantity;
      item.reserved += reserved * line.quantity;
      outcome.touched.add(item.id);
      touch(item.id);
      outcome.movements.push({
        tenantId: state.tenantId,
        itemId: item.id,
        kind,
        quantity: line.quantity,
        onHandDelta: onHand * line.quantity,
        reservedDelta: reserved * line.quantity,
        onHandAfter: item.onHand,
        reservedAfter: item.reserved,
        actor,
        reference: res.reference,
        reservationKey: res.key,
      });
    }
  };
  const finish = (
    res: ReservationState,
    status: 'committed' | 'released' | 'expired' | 'returned',
    actor: string,
  ) => {
    const kind = FINISH_KIND[status];
    // A return puts committed (shipped-out) units back on hand; the others end a hold.
    if (status === 'returned') move(res, kind, actor, 1, 0);
    else move(res, kind, actor, status === 'committed' ? -1 : 0, -1);
    res.status = status;
    res.updatedAt = state.now;
    res.changed = true;
    events.push(reservationEvent(status, toReservation(res)));
  };
  const existing = state.reservations.get(op.key);
  // An active reservation past its expiry that the sweeper has not reached yet expires now.
  if (existing?.status === 'active' && existing.expiresAt <= state.now) {
    finish(existing, 'expired', 'system');
  }
  if (op.kind === 'transfer') {
    const to = state.reservations.get(op.to);
    if (to && to !== existing && to.status === 'active' && to.expiresAt <= state.now) {
      finish(to, 'expired', 'system');
    }
    return applyTransfer(state, op, outcome, events);
  }
  if (op.kind === 'reserve') {
    if (existing) {
      if (existing.requestHash !== op.hash) {
        throw new AppError(
          'IDEMPOTENCY_KEY_REUSED',
          `reservation key ${JSON.stringify(op.key)} was used with other lines`,
        );
      }
      return { reservation: toReservation(existing), created: false };
    }
    return { reservation: reserve(state, op, move, events), created: true };
  }
  if (!existing) throw new AppError('NOT_FOUND', `reservation ${JSON.stringify(op.key)} not found`);
  const notActive = (expected = 'active') =>
    new AppError(
      'RESERVATION_NOT_ACTIVE',
      `reservation ${JSON.stringify(op.key)} is ${existing.status}, not ${expected}`,
      // Not `status`: in a problem document that member is the HTTP status code (RFC 9457).
      { reservationStatus: existing.status },
    );
  switch (op.kind) {
    case 'release':
      if (existing.status === 'active') finish(existing, 'released', op.actor);
      else if (existing.status === 'committed') throw notActive();
      break;
    case 'commit':
      if (existing.status === 'active') finish(existing, 'committed', op.actor);
      else if (existing.status !== 'committed') throw notActive();
      break;
    case 'extend':
      if (existing.status !== 'active') throw notActive();
      existing.expiresAt = new Date(state.now.getTime() + op.ttlSeconds * 1000);
      existing.updatedAt = state.now;
      existing.changed = true;
      break;
    case 'expire':
      if (existing.status === 'active') finish(existing, 'expired', op.actor);
      break;
    case 'return':
      if (existing.status === 'committed') {
        assertReturnFits(state, existing);
        finish(existing, 'returned', op.actor);
      } else if (existing.status !== 'returned') throw notActive('committed');
      break;
  }
  return { reservation: toReservation(existing), created: false };
}

/**
 * Refuses (409, nothing changed) a return that would take an item's on hand past STOCK_LIMIT, the
 * bound every other change keeps: past PostgreSQL's integer the batch's write failed (500), and
 * below it every later stock change of the item was refused as out of range.
 */
function assertReturnFits(state: BatchState, res: ReservationState): void {
  const onHand = new Map<string, number>();
  for (const line of res.lines) {
    const item = state.items.get(line.itemId)!;
    const after = (onHand.get(item.id) ?? item.onHand) + line.quantity;
    onHand.set(item.id, after);
    if (after > STOCK_LIMIT) {
      throw new AppError(
        'CONFLICT',
        `returning reservation ${JSON.stringify(res.key)} would take on hand of item ${item.id} to ${after}, past ${STOCK_LIMIT}; lower its stock first`,
        { itemId: item.id, onHand: item.onHand, limit: STOCK_LIMIT },
      );
    }
  }
}

function reserve(
  state: BatchState,
  op: Extract<ReservationOp, { kind: 'reserve' }>,
  move: (res: ReservationState, kind: LedgerKind, actor: string, onHand: number, reserved: number) => void,
  events: DomainEvent[],
) {
  const held: HeldLine[] = [];
  const short: { variantId: string; requested: number; available: number }[] = [];
  const report: { variantId: string; requested: number; available: number }[] = [];
  for (const line of op.lines) {
    const from = candidates(state, line.variantId);
    let left = line.quantity;
    let available = 0;
    for (const item of from) {
      const free = Math.max(0, item.onHand - item.reserved);
      available += free;
      const take = Math.min(free, left);
      if (take > 0) {
        held.push({
          itemId: item.id,
          variantId: item.variantId,
          locationId: item.locationId,
          quantity: take,
        });
        left -= take;
      }
    }
    const backorder = from.find((i) => i.allowBackorder);
    const same = backorder && held.find((h) => h.itemId === backorder.id);
    // A backorder takes the rest, unless it would push available past -STOCK_LIMIT.
    if (
      left > 0 &&
      backorder &&
      backorder.onHand - backorder.reserved - (same?.quantity ?? 0) - left >= -STOCK_LIMIT
    ) {
      if (same) same.quantity += left;
      else
        held.push({
          itemId: backorder.id,
          variantId: backorder.variantId,
          locationId: backorder.locationId,
          quantity: left,
        });
      left = 0;
    }
    report.push({ variantId: line.variantId, requested: line.quantity, available });
    if (left > 0) short.push({ variantId: line.variantId, requested: line.quantity, available });
  }
  if (short.length > 0) {
    const names = short.map((s) => `${s.variantId} (${s.available} of ${s.requested})`).join(', ');
    throw new AppError('INSUFFICIENT_STOCK', `not enough stock for ${names}`, { lines: report });
  }
  const res: ReservationState = {
    id: uuidv7(),
    key: op.key,
    status: 'active',
    requestHash: op.hash,
    reference: op.reference,
    actor: op.actor,
    expiresAt: new Date(state.now.getTime() + op.ttlSeconds * 1000),
    createdAt: state.now,
    updatedAt: state.now,
    lines: held,
    fresh: true,
    changed: false,
  };
  move(res, 'reserve', op.actor, 0, 1);
  state.reservations.set(op.key, res);
  events.push(reservationEvent('reserved', toReservation(res)));
  return toReservation(res);
}
