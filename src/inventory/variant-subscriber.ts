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
      const json = JSON.stringify(product.variants);
      // SKUs and product ids kept current (only rows that differ are touched), locked in id
      // order first, the order every writer of items uses.
      await sql`
        select i.id from inventory.items i
        where i.variant_id in (select (v->>'id')::uuid from jsonb_array_elements(${json}::jsonb) v)
        order by i.id for update`.execute(trx);
      await sql`
        update inventory.items i set sku = v.sku, product_id = ${product.productId}, updated_at = now()
        from jsonb_to_recordset(${json}::jsonb) as v(id uuid, sku text)
        where i.variant_id = v.id
          and (i.sku is distinct from v.sku or i.product_id is distinct from ${product.productId}::uuid)`.execute(
        trx,
      );
      const existing = await trx
        .selectFrom('inventory.items')
        .select('variant_id')
        .where('variant_id', 'in', ids)
        .execute();
      const have = new Set(existing.map((r) => r.variant_id));
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
