import type { EventBus } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import type { OrdersDb } from './tables.ts';

/** What createOrders receives. */
export type OrdersModuleDeps = { events: EventBus; resolveTenant: TenantResolver };

/** What the orders' routes share. */
export type OrdersDeps = OrdersModuleDeps & { db: OrdersDb };
