import { sql } from 'kysely';
import type { EventBus, ReceivedEvent, Subscriber } from '../platform/events/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import { itemEvent, publish } from './inventory-events.ts';
import { defaultLocation } from './location-store.ts';
import type { InventoryTrx } from './tables.ts';
import { toItem } from './views.ts';

type VariantRef = { id: string; sku: string | null };

/** The product id and variants of a product event's data (the product as the catalog answers it). */
export function variantsOf(data: unknown): { productId: string; variants: VariantRef[] } | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const product = data as { id?: unknown; variants?: unknown };
  if (typeof product.id !== 'string' || !isUuid(product.id) || !Array.isArray(product.variants)) {
    return undefined;
  }
  const variants: VariantRef[] = [];
  for (const v of product.variants.slice(0, 1000) as { id?: unknown; sku?: unknown }[]) {
    if (typeof v?.id !== 'string' || !isUuid(v.id)) continue;
    const sku = typeof v.sku === 'string' && v.sku.length > 0 && v.sku.length <= 100 ? v.sku : null;
    variants.push({ id: v.id.toLowerCase(), sku });
  }
  return { productId: product.id.toLowerCase(), variants };
}

/**
 * Keeps a stock row for every variant: a product created or updated gives each variant without
 * any item a zero-stock item at the tenant's default location (announced as
 * mercato.inventory.created), and keeps the product id and SKU of existing items current.
 * A deleted product or variant leaves its items (their ledger is history; staff may zero them).
 */
export function variantSubscriber(events: EventBus): Subscriber {
  return {
    name: 'inventory.variants',
    topic: 'product-events',
    types: ['mercato.product.created', 'mercato.product.updated'],
    async handle(anyTrx, event: ReceivedEvent) {
      const trx = anyTrx as InventoryTrx;
      const product = variantsOf(event.data);
      if (!product || product.variants.length === 0) return;
      const tenantId = event.tenantid;
      const ids = product.variants.map((v) => v.id);
      // The variants' items, locked in id order first (the order every writer of items uses).
      const locked = (
        await sql<{ id: string; variant_id: string; sku: string | null; product_id: string | null }>`
          select i.id, i.variant_id, i.sku, i.product_id from inventory.items i
          where i.tenant_id = ${tenantId} and i.variant_id = any(${ids}::uuid[])
          order by i.id for update`.execute(trx)
      ).rows;
      // SKUs and product ids kept current: only the items that differ are written.
      const skuOf = new Map(product.variants.map((v) => [v.id, v.sku]));
      const stale = locked
        .filter((i) => i.sku !== skuOf.get(i.variant_id) || i.product_id !== product.productId)
        .map((i) => i.id);
      if (stale.length > 0) {
        await sql`
          update inventory.items i set sku = v.sku, product_id = ${product.productId}, updated_at = now()
          from jsonb_to_recordset(${JSON.stringify(product.variants)}::jsonb) as v(id uuid, sku text)
          where i.tenant_id = ${tenantId} and i.id = any(${stale}::uuid[]) and i.variant_id = v.id`.execute(
          trx,
        );
      }
      const have = new Set(locked.map((i) => i.variant_id));
      const missing = product.variants.filter((v) => !have.has(v.id));
      if (missing.length === 0) return;
      const location = await defaultLocation(trx, tenantId);
      const now = new Date();
      const rows = await trx
        .insertInto('inventory.items')
        .values(
          missing.map((v) => ({
            id: uuidv7(),
            tenant_id: tenantId,
            location_id: location.id,
            variant_id: v.id,
            product_id: product.productId,
            sku: v.sku,
            on_hand: 0,
            reserved: 0,
            low_stock_threshold: 0,
            allow_backorder: false,
            low_stock_alerted: true,
            created_at: now,
            updated_at: now,
          })),
        )
        .onConflict((oc) => oc.constraint('items_variant_location').doNothing())
        .returningAll()
        .execute();
      await publish(
        events,
        trx,
        tenantId,
        rows.map((row) => itemEvent('created', toItem(row))),
        { causationId: event.id, correlationId: event.correlationid },
      );
    },
  };
}
