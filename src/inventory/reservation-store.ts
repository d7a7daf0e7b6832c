import { sql } from 'kysely';
import { AppError } from '../platform/http/index.ts';
import type { HeldLine, ItemState, ReservationState } from './reservation-ops.ts';
import { toReservation } from './reservation-ops.ts';
import type { InventoryTrx, ReservationsTable } from './tables.ts';
import type { Reservation } from './views.ts';

type ReservationRow = Omit<ReservationsTable, 'tenant_id'> & {
  lines: HeldLine[] | string | null;
  /** The locked row is a newer version than the statement's snapshot saw (see withCurrentLines). */
  stale?: boolean | null;
};

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

const LINE_JSON = sql`json_agg(json_build_object('itemId', l.item_id, 'variantId', l.variant_id,
  'locationId', l.location_id, 'quantity', l.quantity))`;

const RESERVATION_COLUMNS = sql`r.id, r.key, r.status, r.request_hash, r.reference, r.actor, r.expires_at,
  r.created_at, r.updated_at,
  (select ${LINE_JSON} from inventory.reservation_lines l where l.reservation_id = r.id) as lines`;

/**
 * For a locking read: whether the row locked is newer than the one the statement's snapshot
 * holds. In READ COMMITTED a `for update` that waited for another transaction locks the row's
 * newest version, but its subqueries (the lines) still read the statement's older snapshot.
 */
const STALE_COLUMN = sql`r.xmin::text <> (select x.xmin::text from inventory.reservations x
  where x.id = r.id) as stale`;

/**
 * The locked reservations with their current lines: those whose lock waited for a transaction
 * that changed them (a transfer changes a stored reservation's lines, and always its row too)
 * have their lines read again by a new statement, whose snapshot sees that commit. No other
 * transaction can change them now: their rows are locked. Without contention: no second read.
 */
async function withCurrentLines(trx: InventoryTrx, rows: ReservationRow[]): Promise<ReservationState[]> {
  const stale = rows.filter((r) => r.stale === true).map((r) => r.id);
  if (stale.length > 0) {
    const { rows: current } = await sql<{ id: string; lines: HeldLine[] | string }>`
      select l.reservation_id as id, ${LINE_JSON} as lines
      from inventory.reservation_lines l
      where l.reservation_id = any(${stale}::uuid[])
      group by l.reservation_id`.execute(trx);
    const byId = new Map(current.map((c) => [c.id, c.lines]));
    for (const row of rows) if (row.stale === true) row.lines = byId.get(row.id) ?? null;
  }
  return rows.map(toState);
}

/**
 * Locks the reservations of the keys (in key order, so two batches never wait on each other in
 * a cycle) and returns them with their current lines.
 */
export async function lockReservations(
  trx: InventoryTrx,
  tenantId: string,
  keys: string[],
): Promise<ReservationState[]> {
  if (keys.length === 0) return [];
  // One lookup of the (tenant_id, key) index per key, joined from the keys: as `r.key = any(…)`
  // the planner, short of statistics (a new table, or one grown since its last analyze), walks
  // every reservation of the tenant and filters by key, a scan that grows with each reservation.
  const lock = async (some: string[]) =>
    (
      await sql<ReservationRow>`
        select ${RESERVATION_COLUMNS}, ${STALE_COLUMN}
        from unnest(${some}::text[]) as k(key)
        join inventory.reservations r on r.tenant_id = ${tenantId} and r.key = k.key
        order by r.key
        for update of r`.execute(trx)
    ).rows;
  let rows = await lock(keys);
  const found = new Set(rows.map((r) => r.key));
  const absent = keys.filter((key) => !found.has(key));
  if (absent.length > 0 && rows.some((r) => r.stale === true)) {
    // A transaction committed changes to rows we lock after this statement's snapshot: it may
    // also have created some of the keys this snapshot lacks (the same transfer run by another
    // process creates its `to` and changes its `from`). Look again with a new snapshot, so a
    // replay answers that reservation instead of being refused on a pool it emptied.
    rows = [...rows, ...(await lock(absent))].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
  return withCurrentLines(trx, rows);
}

/**
 * Locks up to `limit` active reservations past their expiry that no other transaction holds
 * (`skip locked`: several processes sweep at once, each taking other rows).
 */
export async function lockExpired(trx: InventoryTrx, limit: number): Promise<ReservationState[]> {
  const { rows } = await sql<ReservationRow>`
    select ${RESERVATION_COLUMNS}, ${STALE_COLUMN}
    from inventory.reservations r
    where r.status = 'active' and r.expires_at <= now()
    order by r.key
    limit ${limit}
    for update of r skip locked`.execute(trx);
  return withCurrentLines(trx, rows);
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
  /** And the items the lines of these reservations hold (as they stand when the statement runs). */
  keys: string[] = [],
  /** Fail at once (SQLSTATE 55P03) on an item another transaction holds, instead of waiting for it. */
  nowait = false,
): Promise<Map<string, ItemState>> {
  const items = new Map<string, ItemState>();
  if (variantIds.length === 0 && itemIds.length === 0 && keys.length === 0) return items;
  const held =
    keys.length === 0
      ? sql``
      : sql`or i.id = any(array(select l.item_id from unnest(${keys}::text[]) as k(key)
          join inventory.reservations r on r.tenant_id = ${tenantId} and r.key = k.key
          join inventory.reservation_lines l on l.reservation_id = r.id))`;
  const { rows } = await sql<ItemRow>`
    select i.id, i.variant_id, i.location_id, i.on_hand, i.reserved, i.allow_backorder,
      i.low_stock_threshold, i.low_stock_alerted, i.product_id, i.sku, i.created_at,
      (select l.is_default from inventory.locations l where l.id = i.location_id) as at_default
    from inventory.items i
    where i.tenant_id = ${tenantId}
      and (i.variant_id = any(${variantIds}::uuid[]) or i.id = any(${itemIds}::uuid[]) ${held})
    order by i.id
    for update of i ${nowait ? sql`nowait` : sql``}`.execute(trx);
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

/**
 * Up to `limit` tenants with active reservations past their expiry, in id order after `after`
 * (the sweeper's scan, outside any tenant). It walks the tenants with active reservations, one
 * probe of `reservations_tenant_expiry` each (a tenant's first entry is its earliest expiry), so
 * one tenant's backlog of due reservations costs the walk one step, not a scan of the backlog.
 */
export async function tenantsWithExpired(
  trx: InventoryTrx,
  after: string | null,
  limit: number,
): Promise<string[]> {
  const { rows } = await sql<{ tenant_id: string }>`
    with recursive walk as (
      (select r.tenant_id, r.expires_at from inventory.reservations r
       where r.status = 'active' ${after === null ? sql`` : sql`and r.tenant_id > ${after}::uuid`}
       order by r.tenant_id, r.expires_at limit 1)
      union all
      select next.tenant_id, next.expires_at from walk cross join lateral (
        select r.tenant_id, r.expires_at from inventory.reservations r
        where r.status = 'active' and r.tenant_id > walk.tenant_id
        order by r.tenant_id, r.expires_at limit 1
      ) next
    )
    select tenant_id from walk where expires_at <= now() limit ${limit}`.execute(trx);
  return rows.map((r) => r.tenant_id);
}
