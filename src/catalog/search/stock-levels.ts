import { sql } from 'kysely';
import { jsonRows, lockNamed, lockNamedShared, tryLockNamed } from '../../platform/db/index.ts';
import type { DomainEvent, EventBus, ReceivedEvent } from '../../platform/events/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { Trx } from './search-query.ts';

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

type ItemData = {
  variantId: string;
  locationId: string;
  productId: string | null;
  available: number;
  allowBackorder: boolean;
  updatedAt: string;
};

/** An inventory item as inventory-events carry it (created, adjusted, low-stock), else undefined. */
function itemOf(data: unknown): ItemData | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  if (!isUuid(d['variantId']) || !isUuid(d['locationId']) || !isCount(d['available'])) return undefined;
  const updatedAt =
    typeof d['updatedAt'] === 'string' && !Number.isNaN(Date.parse(d['updatedAt']))
      ? d['updatedAt']
      : undefined;
  if (!updatedAt) return undefined;
  return {
    variantId: d['variantId'],
    locationId: d['locationId'],
    productId: isUuid(d['productId']) ? d['productId'] : null,
    available: d['available'],
    allowBackorder: d['allowBackorder'] === true,
    updatedAt,
  };
}

const STOCK_ROW = [
  ['variant_id', 'uuid'],
  ['location_id', 'uuid'],
  ['product_id', 'uuid'],
  ['available', 'integer'],
  ['allow_backorder', 'boolean'],
  ['event_time', 'timestamptz'],
] as const;

/**
 * Keeps catalog.variant_stock and each product's in_stock flag from inventory events. Every
 * change to an item's counters is announced with the item as it then is (created, adjusted,
 * stock-changed, low-stock); each is applied unless a snapshot as new is already there, so events
 * of one item arriving out of order (they have different ordering keys) still end on the newest.
 * Reservation events carry no counters and are passed over. A stock change that leaves the item
 * in or out of stock is skipped as it is published (keepsInStock): a snapshot's `available` is the
 * count at the item's last such change, right in what the catalog reads of it (above zero or not).
 */
export async function applyInventoryEvent(trx: Trx, event: ReceivedEvent): Promise<void> {
  await applyInventoryEvents(trx, [event]);
}

/**
 * applyInventoryEvent for a whole delivery batch, three statements per tenant whatever its size (its stock-flags lock first):
 * the newest snapshot of each item (by its updatedAt; the later event when equal) in one upsert,
 * then the in_stock flags of the products they belong to.
 */
/**
 * The lock that keeps a product's in_stock flag from being lost between its two writers: a
 * rebuild of its search document (indexer.ts, shared: rebuilds run side by side) reads the stock
 * snapshots early in its transaction and writes the flag at its end, while applyInventoryEvents
 * (exclusive) writes the snapshots and then the flags. Without it, an event that committed
 * between a rebuild's read and its write was overwritten by the rebuild's stale flag (its update
 * found the document the rebuild deleted and rewrote). Held to the commit: a rebuild waits for
 * the events being applied, and they for the rebuilds under way, whose documents they then read.
 */
export async function lockStockFlags(trx: Trx, tenantId: string, mode: 'rebuild' | 'events'): Promise<void> {
  const name = stockFlagsLock(tenantId);
  await (mode === 'rebuild' ? lockNamedShared(trx, name) : lockNamed(trx, name));
}

/** lockStockFlags(…, 'events') without waiting: whether it was taken (dictionary.ts). */
export const tryLockStockFlags = (trx: Trx, tenantId: string): Promise<boolean> =>
  tryLockNamed(trx, stockFlagsLock(tenantId));

const stockFlagsLock = (tenantId: string) => `catalog.stock-flags:${tenantId}`;

export async function applyInventoryEvents(trx: Trx, events: ReceivedEvent[]): Promise<void> {
  const byTenant = new Map<string, Map<string, ItemData>>();
  for (const event of events) {
    const item = itemOf(event.data);
    if (!item || !isUuid(event.tenantid)) continue;
    const items = byTenant.get(event.tenantid) ?? new Map<string, ItemData>();
    byTenant.set(event.tenantid, items);
    const key = `${item.variantId}/${item.locationId}`;
    const known = items.get(key);
    if (!known || Date.parse(known.updatedAt) <= Date.parse(item.updatedAt)) items.set(key, item);
  }
  // Tenants in one order (their stock-flags locks: two batches never wait for each other crosswise).
  for (const [tenantId, items] of [...byTenant].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    await lockStockFlags(trx, tenantId, 'events');
    const rows = [...items.values()].map((i) => [
      i.variantId,
      i.locationId,
      i.productId,
      i.available,
      i.allowBackorder,
      i.updatedAt,
    ]);
    await sql`insert into catalog.variant_stock (tenant_id, variant_id, location_id, product_id, available,
        allow_backorder, event_time)
      select ${tenantId}::uuid, v.variant_id, v.location_id, v.product_id, v.available, v.allow_backorder,
        v.event_time
      from ${jsonRows(STOCK_ROW, rows)} as v
      on conflict (tenant_id, variant_id, location_id) do update
        set available = excluded.available, allow_backorder = excluded.allow_backorder,
          product_id = coalesce(excluded.product_id, variant_stock.product_id), event_time = excluded.event_time
        where variant_stock.event_time <= excluded.event_time`.execute(trx);
    const variantIds = [...new Set([...items.values()].map((i) => i.variantId))];
    // Written only where the flag changes: most stock events leave it as it was, and an unchanged
    // row rewritten is a dead tuple per event.
    await sql`with flags as (
        select p.product_id, exists (
          select 1 from catalog.variants v join catalog.variant_stock s
            on s.tenant_id = v.tenant_id and s.variant_id = v.id
          where v.tenant_id = ${tenantId} and v.product_id = p.product_id and (s.available > 0 or s.allow_backorder)
        ) as in_stock
        from (select distinct product_id from catalog.variants
          where tenant_id = ${tenantId} and id = any(${variantIds}::uuid[])) p
      )
      update catalog.search_documents d set in_stock = f.in_stock from flags f
      where d.tenant_id = ${tenantId} and d.product_id = f.product_id and d.in_stock <> f.in_stock`.execute(
      trx,
    );
  }
}

/**
 * A reservation batch's stock change that leaves the item in stock or out of it, as it was (its
 * `availableBefore` hint, the count when the batch locked it): nearly every reserve, release and
 * commit. The catalog reads only that (available > 0 or backorders allowed), so the snapshot it
 * kept of the item still answers right, and the event need not reach it.
 */
function keepsInStock(event: DomainEvent): boolean {
  const before = event.hints?.['availableBefore'];
  const item = event.data as { available?: unknown; allowBackorder?: unknown };
  if (event.type !== 'mercato.inventory.stock-changed' || typeof before !== 'number') return false;
  if (typeof item.available !== 'number') return false;
  return item.allowBackorder === true || before > 0 === item.available > 0;
}

/** Subscribes catalog.stock-levels to the tenant's inventory-events (call before the WAL starts). */
export function registerSearchSubscribers(events: EventBus): void {
  events.subscribe({
    name: 'catalog.stock-levels',
    topic: 'inventory-events',
    // The events that carry an item's counters; reservation events are not delivered here.
    types: [
      'mercato.inventory.created',
      'mercato.inventory.adjusted',
      'mercato.inventory.stock-changed',
      'mercato.inventory.low-stock',
    ],
    skips: keepsInStock,
    handle: applyInventoryEvent,
    handleMany: applyInventoryEvents,
  });
}
