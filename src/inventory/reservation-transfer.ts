import type { DomainEvent } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { transferredEvent } from './inventory-events.ts';
import type { BatchOutcome, BatchState } from './reservation-engine.ts';
import {
  type HeldLine,
  type OpResult,
  type ReservationOp,
  type ReservationState,
  toReservation,
} from './reservation-ops.ts';
import type { ReservationLine } from './views.ts';

export type TransferOp = Extract<ReservationOp, { kind: 'transfer' }>;

const byItem = (a: HeldLine, b: HeldLine) => (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0);

const notFound = (key: string) => new AppError('NOT_FOUND', `reservation ${JSON.stringify(key)} not found`);

const notActive = (res: ReservationState) =>
  new AppError(
    'RESERVATION_NOT_ACTIVE',
    `reservation ${JSON.stringify(res.key)} is ${res.status}, not active`,
    // Not `status`: in a problem document that member is the HTTP status code (RFC 9457).
    { reservationStatus: res.status },
  );

/**
 * Moves units held by reservation `op.key` (from) into `op.to`, against the batch's locked rows
 * (both reservations, the items of from's lines). Pure like the rest of the engine: the caller
 * writes the changed lines, the `transfer` ledger entries and the event. All or nothing; the
 * items' counters do not change (the units stay reserved, only their holder changes).
 *
 * Rules, in order:
 * 1. `to` was created by a transfer with this request's hash (same from and lines): a replay,
 *    answered with `to` as it is now (whatever its status), nothing moves.
 * 2. from missing → NOT_FOUND. from not active: with lines omitted (move all) there is nothing
 *    left to move, answered with `to` as it is (NOT_FOUND when absent); with lines → 409
 *    RESERVATION_NOT_ACTIVE.
 * 3. `to` present but not active → 409 RESERVATION_NOT_ACTIVE.
 * 4. A line asking more of a variant than from holds → 409 INSUFFICIENT_STOCK, every line reported
 *    as `{ variantId, requested, available }` (available: what from holds of it).
 * 5. The move: from's lines shrink (a line at 0 goes); `to` gains them (same item summed; expiry
 *    unchanged) or is created holding exactly them (expiry now + ttlSeconds). A move of everything
 *    ends from as `released` holding nothing; a move of named lines leaves it active, even empty.
 */
export function applyTransfer(
  state: BatchState,
  op: TransferOp,
  outcome: BatchOutcome,
  events: DomainEvent[],
): OpResult {
  if (op.to === op.key) {
    throw new AppError('VALIDATION_FAILED', 'to must name another reservation than from', {
      errors: [{ in: 'body', pointer: '/to', message: 'must differ from from' }],
    });
  }
  const from = state.reservations.get(op.key);
  const to = state.reservations.get(op.to);
  if (to && to.requestHash === op.hash) return { reservation: toReservation(to), created: false };
  if (!from) throw notFound(op.key);
  if (from.status !== 'active') {
    if (op.lines !== null) throw notActive(from);
    if (!to) throw notFound(op.to);
    return { reservation: toReservation(to), created: false };
  }
  if (to && to.status !== 'active') throw notActive(to);

  const moves = op.lines === null ? from.lines.map((l) => ({ ...l })) : pick(from, op.lines);
  remember(from);
  for (const move of moves) {
    const held = from.lines.find((l) => l.itemId === move.itemId)!;
    held.quantity -= move.quantity;
  }
  // reservation_lines holds quantity > 0: a line moved out entirely goes.
  from.lines = from.lines.filter((l) => l.quantity > 0);
  if (op.lines === null) from.status = 'released';
  from.updatedAt = state.now;
  from.changed = true;

  let target: ReservationState;
  if (to) {
    remember(to);
    for (const move of moves) {
      const same = to.lines.find((l) => l.itemId === move.itemId);
      if (same) same.quantity += move.quantity;
      else to.lines.push({ ...move });
    }
    to.lines.sort(byItem);
    to.updatedAt = state.now;
    to.changed = true;
    target = to;
  } else {
    target = {
      id: uuidv7(),
      key: op.to,
      status: 'active',
      requestHash: op.hash,
      reference: op.reference,
      actor: op.actor,
      expiresAt: new Date(state.now.getTime() + op.ttlSeconds * 1000),
      createdAt: state.now,
      updatedAt: state.now,
      lines: moves.map((m) => ({ ...m })).sort(byItem),
      fresh: true,
      changed: false,
    };
    state.reservations.set(op.to, target);
  }

  for (const move of moves) {
    const item = state.items.get(move.itemId)!;
    outcome.movements.push({
      tenantId: state.tenantId,
      itemId: item.id,
      kind: 'transfer',
      quantity: move.quantity,
      onHandDelta: 0,
      reservedDelta: 0,
      onHandAfter: item.onHand,
      reservedAfter: item.reserved,
      reason: `transfer from ${from.key}`,
      actor: op.actor,
      reference: op.reference ?? from.key,
      reservationKey: target.key,
    });
  }
  events.push(transferredEvent(toReservation(from), toReservation(target)));
  return { reservation: toReservation(target), created: !to };
}

/**
 * What of from's lines the requested lines take, each variant from its items in item order; or
 * INSUFFICIENT_STOCK reporting every requested line against what from holds of it.
 */
function pick(from: ReservationState, lines: ReservationLine[]): HeldLine[] {
  const moves: HeldLine[] = [];
  const report: { variantId: string; requested: number; available: number }[] = [];
  let short = false;
  for (const line of lines) {
    const held = from.lines.filter((l) => l.variantId === line.variantId).sort(byItem);
    const available = held.reduce((sum, l) => sum + l.quantity, 0);
    report.push({ variantId: line.variantId, requested: line.quantity, available });
    if (available < line.quantity) {
      short = true;
      continue;
    }
    let left = line.quantity;
    for (const h of held) {
      const take = Math.min(h.quantity, left);
      if (take > 0) moves.push({ ...h, quantity: take });
      left -= take;
    }
  }
  if (short) {
    const names = report
      .filter((r) => r.available < r.requested)
      .map((r) => `${r.variantId} (${r.available} of ${r.requested})`)
      .join(', ');
    throw new AppError(
      'INSUFFICIENT_STOCK',
      `reservation ${JSON.stringify(from.key)} holds too few of ${names}`,
      {
        lines: report,
      },
    );
  }
  return moves;
}

/** Keeps a stored reservation's lines as stored (once), so the batch writes only their difference. */
function remember(res: ReservationState): void {
  if (!res.fresh && !res.storedLines) res.storedLines = new Map(res.lines.map((l) => [l.itemId, l.quantity]));
}
