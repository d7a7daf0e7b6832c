import type { CatalogApi } from '../catalog/index.ts';
import type { CheckoutApi } from '../checkout/index.ts';
import type { AddressBook } from '../identity/index.ts';
import type { InventoryApi } from '../inventory/index.ts';
import type { OrdersApi } from '../orders/index.ts';
import type { AppContext } from '../platform/context.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { FlashGate } from './gate.ts';
import type { FlashSalesDb } from './tables.ts';

/** What createFlashSales receives: the modules a sale drives. */
export type FlashSalesModuleDeps = {
  events: EventBus;
  catalog: CatalogApi;
  inventory: InventoryApi;
  orders: OrdersApi;
  checkout: CheckoutApi;
  addresses: Pick<AddressBook, 'shippingAddresses'>;
};

/** What the module's parts share. */
export type FlashSalesDeps = FlashSalesModuleDeps & { ctx: AppContext; db: FlashSalesDb; gate: FlashGate };

/** Who made a change: `user:<id>` or `key:<id>`. */
export { actorOf } from '../platform/http/index.ts';
