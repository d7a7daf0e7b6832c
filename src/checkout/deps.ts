import type { CartModule } from '../cart/index.ts';
import type { CatalogApi } from '../catalog/index.ts';
import type { InventoryApi } from '../inventory/index.ts';
import type { OrdersApi } from '../orders/index.ts';
import type { PaymentsApi } from '../payments/index.ts';
import type { AppContext } from '../platform/context.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import type { CheckoutDb } from './tables.ts';

/** What createCheckout receives: the modules the saga drives. */
export type CheckoutModuleDeps = {
  events: EventBus;
  resolveTenant: TenantResolver;
  orders: OrdersApi;
  payments: PaymentsApi;
  inventory: InventoryApi;
  catalog: CatalogApi;
  cart: Pick<
    CartModule,
    | 'getCart'
    | 'clearCart'
    | 'recordCheckout'
    | 'forgetCheckout'
    | 'shopperCart'
    | 'shopperTokenHash'
    | 'draftCart'
  >;
};

/** What the saga, its routes and its watchdog share. */
export type CheckoutDeps = CheckoutModuleDeps & { ctx: AppContext; db: CheckoutDb };
