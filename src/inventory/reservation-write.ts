import { sql } from 'kysely';
import { deferToCommit, flushDeferred, type JsonColumn, jsonObjects } from '../platform/db/index.ts';
import { ledgerColumns } from './ledger-store.ts';
import type { BatchOutcome, BatchState } from './reservation-engine.ts';
import type { HeldLine } from './reservation-ops.ts';
import type { InventoryTrx } from './tables.ts';

// The rows writeBatch sends, as jsonObjects reads them.
const ITEM_DELTAS: JsonColumn[] = [
  ['id', 'uuid'],
  ['d_on_hand', 'integer'],
  ['d_reserved', 'integer'],
  ['alerted', 'boolean'],
];
const NEW_RESERVATIONS: JsonColumn[] = [
  ['id', 'uuid'],
  ['key', 'text'],
  ['status', 'text'],
  ['request_hash', 'text'],
  ['reference', 'text'],
  ['actor', 'text'],
  ['expires_at', 'timestamptz'],
];
const LINES: JsonColumn[] = [
  ['reservation_id', 'uuid'],
  ['item_id', 'uuid'],
  ['variant_id', 'uuid'],
  ['location_id', 'uuid'],
  ['quantity', 'integer'],
];
type LineRow = ReturnType<typeof lineRow>;
const lineRow = (reservationId: string, l: HeldLine) => ({
  reservation_id: reservationId,
  item_id: l.itemId,
  variant_id: l.variantId,
  location_id: l.locationId,
  quantity: l.quantity,
});
const CHANGED_RESERVATIONS: JsonColumn[] = [
  ['id', 'uuid'],
  ['status', 'text'],
  ['expires_at', 'timestamptz'],
];
const LEDGER_ROWS: JsonColumn[] = [
  ['id', 'uuid'],
  ['item_id', 'uuid'],
  ['kind', 'text'],
  ['quantity', 'integer'],
  ['on_hand_delta', 'integer'],
  ['reserved_delta', 'integer'],
  ['on_hand_after', 'integer'],
  ['reserved_after', 'integer'],
  ['reason', 'text'],
  ['actor', 'text'],
  ['reference', 'text'],
  ['reservation_key', 'text'],
];

// Whose statement deferToCommit holds in a transaction: the inventory's batch writes.
const WRITES = {};

/**
 * Makes the batch write deferred in trx, if any (writeBatch), before the inventory reads what it
 * wrote: a second operation in the caller's transaction, or a read of stock there.
 */
export const flushWrites = (trx: InventoryTrx): Promise<void> | undefined => flushDeferred(trx, WRITES);

/**
 * Writes what a batch came to in ONE statement whatever its size: data-modifying CTEs update every
 * touched item by its summed delta, insert the new reservations and their lines, write the line
 * changes transfers made to stored reservations (changed quantities and added lines upserted,
 * emptied lines deleted), update the changed reservations and append the ledger entries. Each
 * part reads its rows from one JSON parameter; no two parts touch one row. The items are locked
 * and the answers known already, so in a withTenant transaction the statement waits for the
 * commit and goes out with it (deferToCommit): no round trip of its own while the items are held.
 * The inventory's next read in that transaction writes it first (flushWrites).
 */
export async function writeBatch(trx: InventoryTrx, state: BatchState, outcome: BatchOutcome): Promise<void> {
  const { tenantId, now } = state;
  const items = [...outcome.touched].sort().map((id) => {
    const i = state.items.get(id)!;
    return {
      id,
      d_on_hand: i.onHand - i.lockedOnHand,
      d_reserved: i.reserved - i.lockedReserved,
      alerted: i.alerted,
    };
  });
  const all = [...state.reservations.values()];
  const fresh = all.filter((r) => r.fresh);
  const reservations = fresh.map((r) => ({
    id: r.id,
    key: r.key,
    status: r.status,
    request_hash: r.requestHash,
    reference: r.reference,
    actor: r.actor,
    expires_at: r.expiresAt.toISOString(),
  }));
  const lines = fresh.flatMap((r) => r.lines.map((l) => lineRow(r.id, l)));
  const changed = all
    .filter((r) => r.changed && !r.fresh)
    .map((r) => ({ id: r.id, status: r.status, expires_at: r.expiresAt.toISOString() }));
  // Lines of stored reservations a transfer changed: the difference to what was stored.
  const relined: LineRow[] = [];
  const unlined: { reservation_id: string; item_id: string }[] = [];
  for (const r of all) {
    if (r.fresh || !r.storedLines) continue;
    for (const l of r.lines) {
      if (r.storedLines.get(l.itemId) === l.quantity) continue;
      relined.push(lineRow(r.id, l));
    }
    for (const itemId of r.storedLines.keys()) {
      if (!r.lines.some((l) => l.itemId === itemId)) unlined.push({ reservation_id: r.id, item_id: itemId });
    }
  }
  const ledger = outcome.movements.map(ledgerColumns);
  const writes = [items, reservations, lines, changed, relined, unlined, ledger];
  if (writes.every((rows) => rows.length === 0)) return;
  // The lines of new reservations, and the lines transfers changed (upserted on top of it).
  const insertLines = (rows: LineRow[]) => sql`
      insert into inventory.reservation_lines
        (reservation_id, tenant_id, item_id, variant_id, location_id, quantity)
      select v.reservation_id, ${tenantId}::uuid, v.item_id, v.variant_id, v.location_id, v.quantity
      from ${jsonObjects(LINES, rows)} as v`;
  const statement = sql`
    with touched as (
      update inventory.items i
      set on_hand = i.on_hand + v.d_on_hand, reserved = i.reserved + v.d_reserved,
        low_stock_alerted = v.alerted, updated_at = ${now}
      from ${jsonObjects(ITEM_DELTAS, items)} as v
      where i.id = v.id
      returning 1
    ), made as (
      insert into inventory.reservations
        (id, tenant_id, key, status, request_hash, reference, actor, expires_at, created_at, updated_at)
      select v.id, ${tenantId}::uuid, v.key, v.status, v.request_hash, v.reference, v.actor, v.expires_at,
        ${now}, ${now}
      from ${jsonObjects(NEW_RESERVATIONS, reservations)} as v
      returning 1
    ), held as (
      ${insertLines(lines)}
      returning 1
    ), relined as (
      ${insertLines(relined)}
      on conflict (reservation_id, item_id) do update set quantity = excluded.quantity
      returning 1
    ), unlined as (
      delete from inventory.reservation_lines l
      using ${jsonObjects(LINES.slice(0, 2), unlined)} as v
      where l.reservation_id = v.reservation_id and l.item_id = v.item_id
      returning 1
    ), moved as (
      update inventory.reservations r
      set status = v.status, expires_at = v.expires_at, updated_at = ${now}
      from ${jsonObjects(CHANGED_RESERVATIONS, changed)} as v
      where r.id = v.id
      returning 1
    ), logged as (
      insert into inventory.ledger (id, tenant_id, item_id, kind, quantity, on_hand_delta, reserved_delta,
        on_hand_after, reserved_after, reason, actor, reference, reservation_key, created_at)
      select v.id, ${tenantId}::uuid, v.item_id, v.kind, v.quantity, v.on_hand_delta, v.reserved_delta,
        v.on_hand_after, v.reserved_after, v.reason, v.actor, v.reference, v.reservation_key, ${now}
      from ${jsonObjects(LEDGER_ROWS, ledger)} as v
      returning 1
    )
    select (select count(*) from touched) as items, (select count(*) from made) as made,
      (select count(*) from held) as lines, (select count(*) from relined) as relined,
      (select count(*) from unlined) as unlined, (select count(*) from moved) as moved,
      (select count(*) from logged) as logged`;
  await deferToCommit(trx, WRITES, { query: statement.compile(trx) });
}
