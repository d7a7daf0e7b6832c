import type { CatalogApi } from '../catalog/index.ts';
import type { AddressBook } from '../identity/index.ts';
import type { InventoryApi } from '../inventory/index.ts';
import type { AppContext } from '../platform/context.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import type { CartDb } from './tables.ts';

export type { CatalogApi, SellableVariant } from '../catalog/index.ts';
export type { Availability, InventoryApi } from '../inventory/index.ts';

/** What createCart receives. */
export type CartModuleDeps = {
  events: EventBus;
  resolveTenant: TenantResolver;
  catalog: CatalogApi;
  inventory: InventoryApi;
  addresses: AddressBook;
};

/** What the cart's routes and services share. */
export type CartDeps = CartModuleDeps & { ctx: AppContext; db: CartDb };
