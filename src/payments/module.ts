import type { FastifyInstance } from 'fastify';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import type { PaymentsDeps, PaymentsModuleDeps } from './deps.ts';
import { paymentRoutes } from './payment-routes.ts';
import { type PaymentsApi, paymentsApi } from './payments-api.ts';
import { providerRegistry } from './providers/registry.ts';
import { createTestPsp } from './providers/test-psp.ts';
import type { TestPspDb } from './providers/test-psp-tables.ts';
import {
  settlePending,
  type TestPspLedger,
  testPspLedger,
  type WebhookDelivery,
} from './providers/test-psp-webhooks.ts';
import { refundRecheckSubscriber } from './refund-recheck.ts';
import type { PaymentsDb } from './tables.ts';
import { webhookRoutes } from './webhook-routes.ts';

export type TestProviderControls = {
  /**
   * Settles a pending (tok_pending) authorization at the test PSP and returns the signed webhook
   * it would send: POST its body with its headers to /api/v1/payments/webhooks/test.
   */
  settlePending(transactionId: string, outcome: 'authorized' | 'failed'): Promise<WebhookDelivery>;
  /** The PSP's charges and operations of one merchant (tenant), oldest first. */
  ledger(merchantId: string): Promise<TestPspLedger>;
};

export type PaymentsModule = MercatoModule & PaymentsApi & { testProvider: TestProviderControls };

/** Payments of orders, their provider calls, refunds and webhooks; and the `test` provider. */
export async function createPayments(
  ctx: AppContext,
  moduleDeps: PaymentsModuleDeps,
): Promise<PaymentsModule> {
  const pspDb = ctx.db.kysely as TestPspDb;
  const testPsp = createTestPsp(pspDb, ctx.config.testPspLatencyMs);
  const deps: PaymentsDeps = {
    ctx,
    db: ctx.db.kysely as PaymentsDb,
    pspDb,
    events: moduleDeps.events,
    providers: providerRegistry(testPsp, ctx.config.testPayments),
    findOrder: moduleDeps.findOrder,
    checkoutOf: moduleDeps.checkoutOf,
    logger: ctx.logger.child({ module: 'payments' }),
  };
  // Every process declares the subscriber (an internal target of each tenant's payment-events).
  const rechecks = refundRecheckSubscriber(deps, ctx.config.checkoutStepTimeoutMs + 1000);
  moduleDeps.events.subscribe(rechecks.subscriber);
  return {
    name: 'payments',
    ...paymentsApi(deps),
    testProvider: {
      settlePending: (transactionId, outcome) => settlePending(pspDb, transactionId, outcome),
      ledger: (merchantId) => testPspLedger(pspDb, merchantId),
    },
    async routes(app: FastifyInstance) {
      await app.register(paymentRoutes(deps));
      await app.register(webhookRoutes(deps));
    },
    async stop() {
      await rechecks.close();
    },
  };
}
