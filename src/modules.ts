import { createCart } from './cart/index.ts';
import { createCatalog } from './catalog/index.ts';
import { type CheckoutModule, createCheckout } from './checkout/index.ts';
import { createExceptions } from './exceptions/index.ts';
import { createFlashSales } from './flash-sales/index.ts';
import { createAddressBook, type IdentityModule } from './identity/index.ts';
import { createInventory } from './inventory/index.ts';
import { createOrders } from './orders/index.ts';
import { createPayments } from './payments/index.ts';
import type { AppContext, MercatoModule, ModuleName } from './platform/index.ts';
import { createWal, type WalModule } from './wal/index.ts';

/**
 * The composition root: every module after identity, made on one context and wired together
 * by arguments. Each is created whether or not this process runs it (MERCATO_MODULES), because
 * their typed APIs are plain database calls other modules may use (the cart reads the catalog
 * and inventory) and the WAL's event bus is how any of them publishes; `only` picks the modules
 * whose routes and workers this process runs. Subscribers are declared by every process alike,
 * so each tenant's system namespaces carry the same internal targets everywhere.
 */
export async function createMercatoModules(
  ctx: AppContext,
  identity: IdentityModule,
  only: readonly ModuleName[] = ctx.config.modules,
): Promise<{ wal: WalModule; modules: MercatoModule[] }> {
  const wal = await createWal(ctx);
  const base = { events: wal.events, resolveTenant: identity.resolveTenant };
  const catalog = await createCatalog(ctx, base);
  const inventory = await createInventory(ctx, { ...base, productStatus: catalog.productStatus });
  const addresses = createAddressBook(identity.deps.db);
  const cart = await createCart(ctx, {
    ...base,
    catalog,
    inventory,
    addresses,
  });
  const orders = await createOrders(ctx, base);
  // The checkout is made with the payments it drives; payments ask it (once both exist) whether
  // an order's checkout is open, in their own transaction.
  let checkoutOf: CheckoutModule | undefined;
  const payments = await createPayments(ctx, {
    ...base,
    findOrder: async (tenantId, orderId) => {
      const order = await orders.getOrder(tenantId, orderId);
      return order && { total: order.totals.total, currency: order.currency, status: order.status };
    },
    checkoutOf: async (trx, tenantId, orderId) => checkoutOf?.sagaStatus(trx, tenantId, orderId),
  });
  const checkout = await createCheckout(ctx, { ...base, orders, payments, inventory, catalog, cart });
  checkoutOf = checkout;
  const flashSales = await createFlashSales(ctx, {
    events: wal.events,
    catalog,
    inventory,
    orders,
    checkout,
    addresses,
  });
  const exceptions = await createExceptions(ctx, { events: wal.events, wal, orders, checkout });
  const all: MercatoModule[] = [
    wal,
    catalog,
    inventory,
    cart,
    orders,
    payments,
    checkout,
    flashSales,
    exceptions,
  ];
  // What each module gives every tenant (the WAL: its system namespaces) is made in the tenant's
  // creation transaction, whichever modules this process runs.
  for (const module of all) if (module.onTenantCreated) identity.addTenantHook(module.onTenantCreated);
  return { wal, modules: all.filter((m) => only.includes(m.name as ModuleName)) };
}
