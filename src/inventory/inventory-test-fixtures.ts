import { sql } from 'kysely';
import { createShopWithStaff, type ShopWithStaff, send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createWal, type WalModule } from '../wal/index.ts';
import { createInventory, type InventoryModule, type InventoryOptions } from './index.ts';
import type { InventoryItem } from './views.ts';

export type InventoryTestApp = TestApp & { inventory: InventoryModule; wal: WalModule };

/** The app with the WAL (its EventBus) and the inventory module, on a database of its own. */
export async function startInventoryApp(
  env: Record<string, string> = {},
  options: InventoryOptions = {},
): Promise<InventoryTestApp> {
  let inventory: InventoryModule | undefined;
  let wal: WalModule | undefined;
  const t = await startTestApp(env, {
    modules: async (ctx, identity) => {
      wal = await createWal(ctx);
      inventory = await createInventory(
        ctx,
        { events: wal.events, resolveTenant: identity.resolveTenant },
        options,
      );
      return [wal, inventory];
    },
  });
  return Object.assign(t, { inventory: inventory!, wal: wal! });
}

export type Shop = ShopWithStaff;

export const createShop = createShopWithStaff;

/** Creates stock of a new variant (or the one given) through the API. */
export async function createStock(
  t: TestApp,
  shop: Shop,
  fields: { onHand: number; variantId?: string; [key: string]: unknown },
): Promise<InventoryItem> {
  const response = await send(t.app, 'POST', '/api/v1/inventory', shop.staff, {
    variantId: uuidv7(),
    ...fields,
  });
  if (response.statusCode !== 201) throw new Error(`create stock: ${response.statusCode} ${response.body}`);
  return response.json<InventoryItem>();
}

/** The events of the tenant's inventory-events namespace, oldest first (type, subject, data). */
export async function inventoryEvents(t: TestApp, tenantId: string, type?: string) {
  const rows = await withTenant(t.ctx.db.kysely, tenantId, async (trx) => {
    const { rows } = await sql<{ type: string; subject: string; payload: unknown }>`
      select headers->>'ce-type' as type, headers->>'ce-subject' as subject, payload
      from wal.messages where namespace = 'inventory-events' order by id`.execute(trx);
    return rows;
  });
  const parsed = rows.map((r) => ({
    type: r.type,
    subject: r.subject,
    data: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
  }));
  return type ? parsed.filter((e) => e.type === type) : parsed;
}

export { until } from '../platform/testing/index.ts';
