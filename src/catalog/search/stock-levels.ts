import { sql } from 'kysely';
import type { EventBus, ReceivedEvent } from '../../platform/events/index.ts';
import type { Trx } from './search-query.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isId = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

type ItemData = {
  variantId: string;
  locationId: string;
  productId: string | null;
  available: number;
  allowBackorder: boolean;
  updatedAt: string;
};
type Line = { variantId: string; locationId: string; quantity: number };

/** An inventory item as inventory-events carry it (created, adjusted, low-stock), else undefined. */
function itemOf(data: unknown): ItemData | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  if (!isId(d['variantId']) || !isId(d['locationId']) || !isCount(d['available'])) return undefined;
  const updatedAt =
    typeof d['updatedAt'] === 'string' && !Number.isNaN(Date.parse(d['updatedAt']))
      ? d['updatedAt']
      : undefined;
  if (!updatedAt) return undefined;
  return {
    variantId: d['variantId'],
    locationId: d['locationId'],
    productId: isId(d['productId']) ? d['productId'] : null,
    available: d['available'],
    allowBackorder: d['allowBackorder'] === true,
    updatedAt,
  };
}

/** The lines of a reservation as inventory-events carry it (reserved, released, expired). */
function linesOf(data: unknown): Line[] {
  if (typeof data !== 'object' || data === null) return [];
  const lines = (data as Record<string, unknown>)['lines'];
  if (!Array.isArray(lines)) return [];
  return lines.filter(
    (l): l is Line =>
      typeof l === 'object' && l !== null && isId(l.variantId) && isId(l.locationId) && isCount(l.quantity),
  );
}

/** What a reservation event does to available: reserving takes, releasing and expiring give back; a commit changes nothing (on hand and reserved both drop). */
const DELTA: Record<string, number> = {
  'mercato.inventory.reserved': -1,
  'mercato.inventory.released': 1,
  'mercato.inventory.expired': 1,
};

/**
 * Keeps catalog.variant_stock and each product's in_stock flag from inventory events. Item
 * events carry the stock figures (applied unless an item snapshot as new is already there);
 * reservation events move available by their lines' quantities. Exactly once per event (the
 * inbox), so a delta is never applied twice.
 */
export async function applyInventoryEvent(trx: Trx, event: ReceivedEvent): Promise<void> {
  const tenantId = event.tenantid;
  if (!isId(tenantId)) return;
  let variantIds: string[] = [];
  const item = itemOf(event.data);
  if (item) {
    await sql`insert into catalog.variant_stock (tenant_id, variant_id, location_id, product_id, available,
        allow_backorder, event_time)
      values (${tenantId}, ${item.variantId}, ${item.locationId}, ${item.productId}, ${item.available},
        ${item.allowBackorder}, ${item.updatedAt})
      on conflict (tenant_id, variant_id, location_id) do update
        set available = excluded.available, allow_backorder = excluded.allow_backorder,
          product_id = coalesce(excluded.product_id, variant_stock.product_id), event_time = excluded.event_time
        where variant_stock.event_time <= excluded.event_time`.execute(trx);
    variantIds = [item.variantId];
  } else if (DELTA[event.type] !== undefined) {
    const sign = DELTA[event.type]!;
    const lines = linesOf(event.data);
    for (const line of lines) {
      await sql`update catalog.variant_stock set available = available + ${sign * line.quantity}
        where tenant_id = ${tenantId} and variant_id = ${line.variantId} and location_id = ${line.locationId}`.execute(
        trx,
      );
    }
    variantIds = [...new Set(lines.map((l) => l.variantId))];
  }
  if (variantIds.length === 0) return;
  await sql`update catalog.search_documents d set in_stock = exists (
      select 1 from catalog.variants v join catalog.variant_stock s
        on s.tenant_id = v.tenant_id and s.variant_id = v.id
      where v.tenant_id = d.tenant_id and v.product_id = d.product_id and (s.available > 0 or s.allow_backorder))
    where d.tenant_id = ${tenantId} and d.product_id in (
      select product_id from catalog.variants where tenant_id = ${tenantId} and id = any(${variantIds}::uuid[]))`.execute(
    trx,
  );
}

/** Subscribes catalog.stock-levels to the tenant's inventory-events (call before the WAL starts). */
export function registerSearchSubscribers(events: EventBus): void {
  events.subscribe({
    name: 'catalog.stock-levels',
    topic: 'inventory-events',
    types: ['mercato.inventory.*'],
    handle: applyInventoryEvent,
  });
}
