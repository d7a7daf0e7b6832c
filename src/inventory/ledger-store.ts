import { sql } from 'kysely';
import { isoTime as iso } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { InventoryTrx, LedgerKind } from './tables.ts';
import type { LedgerEntry } from './views.ts';

/** One movement to record; `after` is the item's on_hand and reserved once it is applied. */
export type Movement = {
  tenantId: string;
  itemId: string;
  kind: LedgerKind;
  quantity: number;
  onHandDelta: number;
  reservedDelta: number;
  onHandAfter: number;
  reservedAfter: number;
  reason?: string | null | undefined;
  actor: string;
  reference?: string | null | undefined;
  reservationKey?: string | null | undefined;
};

/** A movement as a new ledger row's columns (with a fresh id), less tenant_id and created_at. */
export function ledgerColumns(m: Omit<Movement, 'tenantId'>) {
  return {
    id: uuidv7(),
    item_id: m.itemId,
    kind: m.kind,
    quantity: m.quantity,
    on_hand_delta: m.onHandDelta,
    reserved_delta: m.reservedDelta,
    on_hand_after: m.onHandAfter,
    reserved_after: m.reservedAfter,
    reason: m.reason ?? null,
    actor: m.actor,
    reference: m.reference ?? null,
    reservation_key: m.reservationKey ?? null,
  };
}

/** Appends movements in one multi-row INSERT, in the caller's transaction. */
export async function appendLedger(trx: InventoryTrx, movements: Movement[], at: Date): Promise<void> {
  if (movements.length === 0) return;
  await trx
    .insertInto('inventory.ledger')
    .values(movements.map((m) => ({ ...ledgerColumns(m), tenant_id: m.tenantId, created_at: at })))
    .execute();
}

/** One page of an item's ledger, oldest first, after the entry `after`. */
export async function listLedger(
  trx: InventoryTrx,
  itemId: string,
  page: { limit: number; after: string | undefined },
): Promise<LedgerEntry[]> {
  let query = trx.selectFrom('inventory.ledger').selectAll().where('item_id', '=', itemId);
  if (page.after) query = query.where('id', '>', page.after);
  const rows = await query
    .orderBy('id')
    .limit(page.limit + 1)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    itemId: r.item_id,
    kind: r.kind,
    quantity: r.quantity,
    onHandDelta: r.on_hand_delta,
    reservedDelta: r.reserved_delta,
    onHandAfter: r.on_hand_after,
    reservedAfter: r.reserved_after,
    reason: r.reason,
    actor: r.actor,
    reference: r.reference,
    reservationKey: r.reservation_key,
    createdAt: iso(r.created_at),
  }));
}

/** An item whose stored counters disagree with what its ledger (or its active reservations) add up to. */
export type Drift = {
  itemId: string;
  variantId: string;
  onHand: number;
  reserved: number;
  ledgerOnHand: number;
  ledgerReserved: number;
  /** What the active reservations hold of the item. */
  activeReserved: number;
};

/**
 * Rebuilds every item's on_hand and reserved of the tenant from its ledger and compares them
 * with the stored counters and with the sum of its active reservation lines; returns the items
 * that disagree (none when the stock is sound) and how many were checked.
 */
export async function verifyStock(trx: InventoryTrx): Promise<{ checked: number; drift: Drift[] }> {
  const { rows } = await sql<{
    id: string;
    variant_id: string;
    on_hand: number;
    reserved: number;
    ledger_on_hand: number | string;
    ledger_reserved: number | string;
    active_reserved: number | string;
  }>`
    select i.id, i.variant_id, i.on_hand, i.reserved,
      coalesce(l.on_hand, 0) as ledger_on_hand, coalesce(l.reserved, 0) as ledger_reserved,
      coalesce(a.reserved, 0) as active_reserved
    from inventory.items i
    left join (
      select item_id, sum(on_hand_delta) as on_hand, sum(reserved_delta) as reserved
      from inventory.ledger group by item_id
    ) l on l.item_id = i.id
    left join (
      select rl.item_id, sum(rl.quantity) as reserved
      from inventory.reservation_lines rl
      join inventory.reservations r on r.id = rl.reservation_id and r.status = 'active'
      group by rl.item_id
    ) a on a.item_id = i.id
    -- only the drifted items come back: a sound tenant of a million items is not read into memory
    where i.on_hand <> coalesce(l.on_hand, 0) or i.reserved <> coalesce(l.reserved, 0)
      or i.reserved <> coalesce(a.reserved, 0)
    order by i.id`.execute(trx);
  const counted = await sql<{ n: number | string }>`select count(*) as n from inventory.items`.execute(trx);
  const drift = rows.map(
    (r): Drift => ({
      itemId: r.id,
      variantId: r.variant_id,
      onHand: r.on_hand,
      reserved: r.reserved,
      ledgerOnHand: Number(r.ledger_on_hand),
      ledgerReserved: Number(r.ledger_reserved),
      activeReserved: Number(r.active_reserved),
    }),
  );
  return { checked: Number(counted.rows[0]?.n ?? 0), drift };
}
