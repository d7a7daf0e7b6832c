import { storefrontTenant } from '../platform/http/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { checkoutRoutes } from './checkout-routes.ts';
import type { CheckoutDeps, CheckoutModuleDeps } from './deps.ts';
import { createSagaRunner } from './saga-runner.ts';
import type { CheckoutDb } from './tables.ts';
import { paymentSubscriber, watchdogSubscriber } from './watchdog.ts';

export type CheckoutModule = MercatoModule;

/** The checkout saga: POST /orders, cancel, staff status changes, its watchdog and its log. */
export async function createCheckout(
  ctx: AppContext,
  moduleDeps: CheckoutModuleDeps,
): Promise<CheckoutModule> {
  const deps: CheckoutDeps = { ...moduleDeps, ctx, db: ctx.db.kysely as CheckoutDb };
  const logger = ctx.logger.child({ module: 'checkout' });
  const runner = createSagaRunner(deps, logger);
  // Every process declares the subscribers (the internal targets of each tenant's namespaces).
  deps.events.subscribe(watchdogSubscriber(deps.events, runner, ctx.config.checkoutStepTimeoutMs + 1000));
  deps.events.subscribe(paymentSubscriber(runner));
  return {
    name: 'checkout',
    async routes(app) {
      await app.register(
        checkoutRoutes(deps, runner, (request) => storefrontTenant(request, deps.resolveTenant)),
      );
    },
    async stop() {
      await runner.close();
    },
  };
}
