import { sql } from 'kysely';
import { AppError } from '../platform/http/index.ts';
import { ledgerColumns } from './ledger-store.ts';
import type { BatchOutcome, BatchState } from './reservation-engine.ts';
import type { HeldLine, ItemState, ReservationState } from './reservation-ops.ts';
import { toReservation } from './reservation-ops.ts';
import type { InventoryTrx, ReservationsTable } from './tables.ts';
import type { Reservation } from './views.ts';

type ReservationRow = Omit<ReservationsTable, 'tenant_id'> & { lines: HeldLine[] | string | null };

const json = (value: unknown) => JSON.stringify(value);

function toState(row: ReservationRow): ReservationState {
  const lines = typeof row.lines === 'string' ? (JSON.parse(row.lines) as HeldLine[]) : (row.lines ?? []);
  return {
    id: row.id,
    key: row.key,
    status: row.status,
    requestHash: row.request_hash,
    reference: row.reference,
    actor: row.actor,
    expiresAt: new Date(row.expires_at),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    lines: lines.sort((a, b) => (a.itemId < b.itemId ? -1 : 1)),
    fresh: false,
    changed: false,
  };
}

const RESERVATION_COLUMNS = sql`r.id, r.key, r.status, r.request_hash, r.reference, r.actor, r.expires_at,
  r.created_at, r.updated_at,
  (select json_agg(json_build_object('itemId', l.item_id, 'variantId', l.variant_id,
     'locationId', l.location_id, 'quantity', l.quantity))
   from inventory.reservation_lines l where l.reservation_id = r.id) as lines`;

/**
 * Locks the reservations of the keys (in key order, so two batches never wait on each other in
 * a cycle) and returns them with their lines.
 */
export async function lockReservations(
  trx: InventoryTrx,
  tenantId: string,
  keys: string[],
): Promise<ReservationState[]> {
  if (keys.length === 0) return [];
  // The tenant named, so the (tenant_id, key) index finds them (else every reservation is read).
  const { rows } = await sql<ReservationRow>`
    select ${RESERVATION_COLUMNS}
    from inventory.reservations r
    where r.tenant_id = ${tenantId} and r.key = any(${keys}::text[])
    order by r.key
    for update of r`.execute(trx);
  return rows.map(toState);
}

/**
 * Locks up to `limit` active reservations past their expiry that no other transaction holds
 * (`skip locked`: several processes sweep at once, each taking other rows).
 */
export async function lockExpired(trx: InventoryTrx, limit: number): Promise<ReservationState[]> {
  const { rows } = await sql<ReservationRow>`
    select ${RESERVATION_COLUMNS}
    from inventory.reservations r
    where r.status = 'active' and r.expires_at <= now()
    order by r.key
    limit ${limit}
    for update of r skip locked`.execute(trx);
  return rows.map(toState);
}

type ItemRow = {
  id: string;
  variant_id: string;
  location_id: string;
  at_default: boolean | null;
  on_hand: number;
  reserved: number;
  allow_backorder: boolean;
  low_stock_threshold: number;
  low_stock_alerted: boolean;
  product_id: string | null;
  sku: string | null;
  created_at: Date | string;
};

/**
 * Locks the items of the variants and the item ids, in id order: every writer of items locks in
 * that one order, so concurrent batches (and processes) never deadlock on them.
 */
export async function lockItems(
  trx: InventoryTrx,
  tenantId: string,
  variantIds: string[],
  itemIds: string[],
): Promise<Map<string, ItemState>> {
  const items = new Map<string, ItemState>();
  if (variantIds.length === 0 && itemIds.length === 0) return items;
  const { rows } = await sql<ItemRow>`
    select i.id, i.variant_id, i.location_id, i.on_hand, i.reserved, i.allow_backorder,
      i.low_stock_threshold, i.low_stock_alerted, i.product_id, i.sku, i.created_at,
      (select l.is_default from inventory.locations l where l.id = i.location_id) as at_default
    from inventory.items i
    where i.tenant_id = ${tenantId}
      and (i.variant_id = any(${variantIds}::uuid[]) or i.id = any(${itemIds}::uuid[]))
    order by i.id
    for update of i`.execute(trx);
  for (const r of rows) {
    items.set(r.id, {
      id: r.id,
      variantId: r.variant_id,
      locationId: r.location_id,
      atDefault: r.at_default === true,
      onHand: r.on_hand,
      reserved: r.reserved,
      allowBackorder: r.allow_backorder,
      threshold: r.low_stock_threshold,
      alerted: r.low_stock_alerted,
      lockedOnHand: r.on_hand,
      lockedReserved: r.reserved,
      productId: r.product_id,
      sku: r.sku,
      createdAt: r.created_at,
    });
  }
  return items;
}

/**
 * Writes what a batch came to in ONE statement whatever its size (one round trip): data-modifying
 * CTEs update every touched item by its summed delta, insert the new reservations and their
 * lines, update the changed ones and append the ledger entries. Each part reads its rows from
 * one JSON parameter.
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
  const lines = fresh.flatMap((r) =>
    r.lines.map((l) => ({
      reservation_id: r.id,
      item_id: l.itemId,
      variant_id: l.variantId,
      location_id: l.locationId,
      quantity: l.quantity,
    })),
  );
  const changed = all
    .filter((r) => r.changed && !r.fresh)
    .map((r) => ({ id: r.id, status: r.status, expires_at: r.expiresAt.toISOString() }));
  const ledger = outcome.movements.map(ledgerColumns);
  if (items.length + reservations.length + changed.length + ledger.length === 0) return;
  await sql`
    with touched as (
      update inventory.items i
      set on_hand = i.on_hand + v.d_on_hand, reserved = i.reserved + v.d_reserved,
        low_stock_alerted = v.alerted, updated_at = ${now}
      from jsonb_to_recordset(${json(items)}::jsonb)
        as v(id uuid, d_on_hand integer, d_reserved integer, alerted boolean)
      where i.id = v.id
      returning 1
    ), made as (
      insert into inventory.reservations
        (id, tenant_id, key, status, request_hash, reference, actor, expires_at, created_at, updated_at)
      select v.id, ${tenantId}::uuid, v.key, v.status, v.request_hash, v.reference, v.actor, v.expires_at,
        ${now}, ${now}
      from jsonb_to_recordset(${json(reservations)}::jsonb) as v(id uuid, key text, status text,
        request_hash text, reference text, actor text, expires_at timestamptz)
      returning 1
    ), held as (
      insert into inventory.reservation_lines
        (reservation_id, tenant_id, item_id, variant_id, location_id, quantity)
      select v.reservation_id, ${tenantId}::uuid, v.item_id, v.variant_id, v.location_id, v.quantity
      from jsonb_to_recordset(${json(lines)}::jsonb) as v(reservation_id uuid, item_id uuid,
        variant_id uuid, location_id uuid, quantity integer)
      returning 1
    ), moved as (
      update inventory.reservations r
      set status = v.status, expires_at = v.expires_at, updated_at = ${now}
      from jsonb_to_recordset(${json(changed)}::jsonb) as v(id uuid, status text, expires_at timestamptz)
      where r.id = v.id
      returning 1
    ), logged as (
      insert into inventory.ledger (id, tenant_id, item_id, kind, quantity, on_hand_delta, reserved_delta,
        on_hand_after, reserved_after, reason, actor, reference, reservation_key, created_at)
      select v.id, ${tenantId}::uuid, v.item_id, v.kind, v.quantity, v.on_hand_delta, v.reserved_delta,
        v.on_hand_after, v.reserved_after, v.reason, v.actor, v.reference, v.reservation_key, ${now}
      from jsonb_to_recordset(${json(ledger)}::jsonb) as v(id uuid, item_id uuid, kind text,
        quantity integer, on_hand_delta integer, reserved_delta integer, on_hand_after integer,
        reserved_after integer, reason text, actor text, reference text, reservation_key text)
      returning 1
    )
    select (select count(*) from touched) as items, (select count(*) from made) as made,
      (select count(*) from held) as lines, (select count(*) from moved) as moved,
      (select count(*) from logged) as logged`.execute(trx);
}

/** A reservation by key, without locking. */
export async function getReservation(trx: InventoryTrx, key: string): Promise<Reservation> {
  const { rows } = await sql<ReservationRow>`
    select ${RESERVATION_COLUMNS} from inventory.reservations r where r.key = ${key}`.execute(trx);
  if (!rows[0]) throw new AppError('NOT_FOUND', `reservation ${JSON.stringify(key)} not found`);
  return toReservation(toState(rows[0]));
}

/** The earliest expiry of any active reservation of any tenant (the sweeper's next wake-up). */
export async function nextExpiry(trx: InventoryTrx): Promise<Date | undefined> {
  const { rows } = await sql<{ at: Date | string | null }>`
    select min(expires_at) as at from inventory.reservations where status = 'active'`.execute(trx);
  const at = rows[0]?.at;
  return at ? new Date(at) : undefined;
}

/** Tenants with active reservations past their expiry (the sweeper's scan, outside any tenant). */
export async function tenantsWithExpired(trx: InventoryTrx, limit: number): Promise<string[]> {
  const { rows } = await sql<{ tenant_id: string }>`
    select distinct tenant_id from (
      select tenant_id from inventory.reservations
      where status = 'active' and expires_at <= now()
      order by expires_at limit 1000
    ) due limit ${limit}`.execute(trx);
  return rows.map((r) => r.tenant_id);
}
