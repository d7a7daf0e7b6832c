import type { Transaction } from 'kysely';
import type { EventMeta } from '../platform/events/index.ts';
import { storefrontTenant } from '../platform/http/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { checkoutRoutes } from './checkout-routes.ts';
import type { CheckoutDeps, CheckoutModuleDeps } from './deps.ts';
import { refundFailedSubscriber } from './refund-failed.ts';
import { createSagaRunner, type Held, type RunResult } from './saga-runner.ts';
import { findSaga } from './saga-store.ts';
import { type SagaStart, startSaga } from './start-saga.ts';
import type { CheckoutDb, CheckoutTrx } from './tables.ts';
import { paymentSubscriber, watchdogSubscriber } from './watchdog.ts';
import { backfillWatchdogs } from './watchdog-backfill.ts';

/** What other modules (flash sales) may do with the saga. */
export type CheckoutApi = {
  /**
   * In the caller's transaction of the tenant: the order's saga (held by the caller), its watchdog,
   * and its steps up to the first call out; after the commit, `run(held)` goes on from there.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  startSaga(trx: Transaction<any>, tenantId: string, start: SagaStart, meta: EventMeta): Promise<Held>;
  /** Runs a saga as far as it can go now (with `held`: the one startSaga made, whose lease the caller has). */
  run(tenantId: string, sagaId: string, held?: Held): Promise<RunResult>;
  /**
   * In the caller's transaction of the tenant (no second one: PGlite has one connection): the
   * status of the order's saga (`running`, `compensating`, `completed`, `failed`, `cancelled`),
   * undefined when it has none. The payments module refuses staff payments unless it is completed.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  sagaStatus(trx: Transaction<any>, tenantId: string, orderId: string): Promise<string | undefined>;
};

export type CheckoutModule = MercatoModule & CheckoutApi;

/** The checkout saga: POST /orders, cancel, staff status changes, its watchdog and its log. */
export async function createCheckout(
  ctx: AppContext,
  moduleDeps: CheckoutModuleDeps,
): Promise<CheckoutModule> {
  const deps: CheckoutDeps = { ...moduleDeps, ctx, db: ctx.db.kysely as CheckoutDb };
  const logger = ctx.logger.child({ module: 'checkout' });
  const runner = createSagaRunner(deps, logger);
  // Every process declares the subscribers (the internal targets of each tenant's namespaces).
  const watchdogDelayMs = ctx.config.checkoutStepTimeoutMs + 1000;
  deps.events.subscribe(watchdogSubscriber(deps.events, runner, watchdogDelayMs));
  deps.events.subscribe(paymentSubscriber(runner));
  deps.events.subscribe(refundFailedSubscriber(deps, runner, watchdogDelayMs));
  return {
    name: 'checkout',
    startSaga: (trx, tenantId, start, meta) =>
      startSaga(deps, runner, trx as CheckoutTrx, tenantId, start, meta),
    run: (tenantId, sagaId, held) => runner.run(tenantId, sagaId, held),
    sagaStatus: async (trx, _tenantId, orderId) => (await findSaga(trx as CheckoutTrx, { orderId }))?.status,
    async routes(app) {
      await app.register(
        checkoutRoutes(deps, runner, (request) => storefrontTenant(request, deps.resolveTenant)),
      );
    },
    async start() {
      // Sagas left compensating without a watchdog by an earlier release (migration 0060).
      await backfillWatchdogs(deps, watchdogDelayMs, logger);
    },
    async stop() {
      await runner.close();
    },
  };
}
