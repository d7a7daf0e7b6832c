import type { DomainEvent } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { itemEvent } from './inventory-events.ts';
import { appendLedger, type Movement } from './ledger-store.ts';
import { defaultLocation, getLocation } from './location-store.ts';
import { lowStockTransition } from './low-stock.ts';
import { type InventoryTrx, type LedgerKind, STOCK_LIMIT } from './tables.ts';
import { type Availability, type InventoryItem, toItem } from './views.ts';

/** What a change to items came to: the item after it and the events to publish with it. */
export type ItemChange = { item: InventoryItem; events: DomainEvent[] };

export type NewItem = {
  variantId: string;
  productId?: string | null | undefined;
  sku?: string | null | undefined;
  locationId?: string | undefined;
  onHand: number;
  lowStockThreshold?: number | undefined;
  allowBackorder?: boolean | undefined;
};

/** Creates stock of a variant at a location (the default one unless named); a receive entry records onHand. */
export async function createItem(
  trx: InventoryTrx,
  tenantId: string,
  input: NewItem,
  actor: string,
): Promise<ItemChange> {
  const location = input.locationId
    ? await getLocation(trx, input.locationId, 'key share')
    : await defaultLocation(trx, tenantId);
  const threshold = input.lowStockThreshold ?? 0;
  const now = new Date();
  const row = await trx
    .insertInto('inventory.items')
    .values({
      id: uuidv7(),
      tenant_id: tenantId,
      location_id: location.id,
      variant_id: input.variantId,
      product_id: input.productId ?? null,
      sku: input.sku ?? null,
      on_hand: input.onHand,
      reserved: 0,
      low_stock_threshold: threshold,
      allow_backorder: input.allowBackorder === true,
      // Created below the threshold is not a crossing: the flag is set without an event.
      low_stock_alerted: input.onHand <= threshold,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.constraint('items_variant_location').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) {
    throw new AppError(
      'CONFLICT',
      `variant ${input.variantId} already has stock at location ${location.id}: change it with PUT /inventory/{id}/stock`,
    );
  }
  if (input.onHand !== 0) {
    await appendLedger(
      trx,
      [
        {
          tenantId,
          itemId: row.id,
          kind: 'receive',
          quantity: input.onHand,
          onHandDelta: input.onHand,
          reservedDelta: 0,
          onHandAfter: input.onHand,
          reservedAfter: 0,
          reason: 'initial stock',
          actor,
        },
      ],
      now,
    );
  }
  const item = toItem(row);
  return { item, events: [itemEvent('created', item)] };
}

export async function getItem(trx: InventoryTrx, id: string): Promise<InventoryItem> {
  const row = await trx.selectFrom('inventory.items').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `inventory item ${id} not found`);
  return toItem(row);
}

export type ItemFilter = {
  variantId?: string | undefined;
  productId?: string | undefined;
  sku?: string | undefined;
  locationId?: string | undefined;
  lowStock?: boolean | undefined;
};

/** A page of items by id, after `after`, matching the filter. */
export async function listItems(
  trx: InventoryTrx,
  filter: ItemFilter,
  page: { limit: number; after: string | undefined },
): Promise<InventoryItem[]> {
  let query = trx.selectFrom('inventory.items').selectAll();
  if (filter.variantId) query = query.where('variant_id', '=', filter.variantId);
  if (filter.productId) query = query.where('product_id', '=', filter.productId);
  if (filter.sku) query = query.where('sku', '=', filter.sku);
  if (filter.locationId) query = query.where('location_id', '=', filter.locationId);
  if (filter.lowStock === true) query = query.whereRef('available', '<=', 'low_stock_threshold');
  if (filter.lowStock === false) query = query.whereRef('available', '>', 'low_stock_threshold');
  if (page.after) query = query.where('id', '>', page.after);
  const rows = await query
    .orderBy('id')
    .limit(page.limit + 1)
    .execute();
  return rows.map(toItem);
}

/** The item row under a row lock, or NOT_FOUND. */
async function lockItem(trx: InventoryTrx, id: string) {
  const row = await trx
    .selectFrom('inventory.items')
    .selectAll()
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `inventory item ${id} not found`);
  return row;
}

/** The item after an adjustment, with its adjusted event and (when it just went low) its low-stock one. */
function adjusted(updated: Parameters<typeof toItem>[0], lowStock: boolean): ItemChange {
  const item = toItem(updated);
  const events = [itemEvent('adjusted', item)];
  if (lowStock) events.push(itemEvent('low-stock', item));
  return { item, events };
}

export type StockChange = { set: number; adjust?: undefined } | { adjust: number; set?: undefined };

/**
 * Sets or adjusts on hand under the item's row lock, with a ledger entry of `kind` (receive and
 * return only add stock). On hand may not fall below what is reserved (unless backorders are allowed).
 */
export async function changeStock(
  trx: InventoryTrx,
  tenantId: string,
  id: string,
  change: StockChange & { reason: string; reference?: string | undefined; kind?: LedgerKind | undefined },
  actor: string,
): Promise<ItemChange> {
  const row = await lockItem(trx, id);
  const delta = change.set !== undefined ? change.set - row.on_hand : change.adjust;
  const kind = change.kind ?? 'adjust';
  if ((kind === 'receive' || kind === 'return') && delta <= 0) {
    throw new AppError('VALIDATION_FAILED', `a ${kind} adds stock: the change must be positive`, {
      errors: [{ in: 'body', pointer: '/kind', message: `${kind} needs a positive change of on hand` }],
    });
  }
  const onHand = row.on_hand + delta;
  if (!row.allow_backorder && onHand < row.reserved) {
    throw new AppError(
      'CONFLICT',
      `on hand cannot fall below the ${row.reserved} reserved (asked for ${onHand}); release or commit reservations first`,
      { reserved: row.reserved, onHand: row.on_hand },
    );
  }
  if (
    !Number.isSafeInteger(onHand) ||
    Math.abs(onHand) > STOCK_LIMIT ||
    onHand - row.reserved < -STOCK_LIMIT
  ) {
    throw new AppError('CONFLICT', `on hand would be ${onHand} with ${row.reserved} reserved, out of range`);
  }
  const low = lowStockTransition(onHand - row.reserved, row.low_stock_threshold, row.low_stock_alerted);
  const now = new Date();
  const updated = await trx
    .updateTable('inventory.items')
    .set({ on_hand: onHand, low_stock_alerted: low.alerted, updated_at: now })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  if (delta !== 0) {
    const movement: Movement = {
      tenantId,
      itemId: id,
      kind,
      quantity: Math.abs(delta),
      onHandDelta: delta,
      reservedDelta: 0,
      onHandAfter: onHand,
      reservedAfter: row.reserved,
      reason: change.reason,
      reference: change.reference,
      actor,
    };
    await appendLedger(trx, [movement], now);
  }
  return adjusted(updated, low.publish);
}

/** Changes the low-stock threshold or whether backorders are allowed. */
export async function updateItemSettings(
  trx: InventoryTrx,
  id: string,
  fields: { lowStockThreshold?: number | undefined; allowBackorder?: boolean | undefined },
): Promise<ItemChange> {
  const row = await lockItem(trx, id);
  const allow = fields.allowBackorder ?? row.allow_backorder;
  if (!allow && (row.reserved > row.on_hand || row.on_hand < 0)) {
    throw new AppError(
      'CONFLICT',
      `backorders cannot be turned off while ${row.reserved} are reserved of ${row.on_hand} on hand`,
    );
  }
  const threshold = fields.lowStockThreshold ?? row.low_stock_threshold;
  const low = lowStockTransition(row.on_hand - row.reserved, threshold, row.low_stock_alerted);
  const updated = await trx
    .updateTable('inventory.items')
    .set({
      low_stock_threshold: threshold,
      allow_backorder: allow,
      low_stock_alerted: low.alerted,
      updated_at: new Date(),
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  return adjusted(updated, low.publish);
}

/** Stock of the variants summed over locations; a variant without items is absent. */
export async function availabilityOf(
  trx: InventoryTrx,
  filter: { variantIds: string[] } | { productId: string },
): Promise<Map<string, Availability & { productId: string | null }>> {
  let query = trx
    .selectFrom('inventory.items')
    .select(['variant_id', 'product_id', 'on_hand', 'reserved', 'allow_backorder']);
  if ('variantIds' in filter) {
    if (filter.variantIds.length === 0) return new Map();
    query = query.where('variant_id', 'in', filter.variantIds);
  } else {
    query = query.where('product_id', '=', filter.productId);
  }
  const rows = await query.orderBy('variant_id').execute();
  const map = new Map<string, Availability & { productId: string | null }>();
  for (const r of rows) {
    const sum = map.get(r.variant_id) ?? {
      variantId: r.variant_id,
      productId: r.product_id,
      onHand: 0,
      reserved: 0,
      available: 0,
      allowBackorder: false,
    };
    sum.onHand += r.on_hand;
    sum.reserved += r.reserved;
    sum.available = sum.onHand - sum.reserved;
    sum.allowBackorder ||= r.allow_backorder;
    map.set(r.variant_id, sum);
  }
  return map;
}
