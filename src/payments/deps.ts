import type { Transaction } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import type { ProviderRegistry } from './providers/registry.ts';
import type { TestPspDb } from './providers/test-psp-tables.ts';
import type { PaymentsDb } from './tables.ts';

/** An order's total, currency and status as the orders module knows them; undefined when there is none. */
export type FindOrder = (
  tenantId: string,
  orderId: string,
) => Promise<{ total: number; currency: string; status: string } | undefined>;

/**
 * The status of the order's checkout saga (running, compensating, completed, failed, cancelled),
 * read in the caller's transaction (the checkout module, composed in src/modules.ts); undefined
 * when the order has none.
 */
export type CheckoutOf = (
  // biome-ignore lint/suspicious/noExplicitAny: the payments transaction of the tenant
  trx: Transaction<any>,
  tenantId: string,
  orderId: string,
) => Promise<string | undefined>;

/** What createPayments receives. */
export type PaymentsModuleDeps = {
  events: EventBus;
  resolveTenant: TenantResolver;
  /** When given, POST /payments checks the order exists and the payment fits it. */
  findOrder?: FindOrder;
  /** When given, POST /payments refuses an order whose checkout is open (its saga takes its payment). */
  checkoutOf?: CheckoutOf;
};

/** What the payments services and routes share. */
export type PaymentsDeps = {
  ctx: AppContext;
  db: PaymentsDb;
  pspDb: TestPspDb;
  events: EventBus;
  providers: ProviderRegistry;
  findOrder: FindOrder | undefined;
  checkoutOf: CheckoutOf | undefined;
  logger: Logger;
};
