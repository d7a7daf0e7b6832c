import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { createShopWithStaff, type ShopWithStaff, send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createWal, type WalModule } from '../wal/index.ts';
import type { FindOrder } from './deps.ts';
import { createPayments, type Payment, type PaymentsModule } from './index.ts';

export type PaymentsTestApp = TestApp & { payments: PaymentsModule; wal: WalModule };

/**
 * The app with the WAL (its EventBus) and payments, composed as src/modules.ts does; findOrder
 * stands in for the orders module when a test gives one.
 */
export async function startPaymentsApp(
  env: Record<string, string> = {},
  options: { findOrder?: FindOrder } = {},
): Promise<PaymentsTestApp> {
  let wal: WalModule | undefined;
  let payments: PaymentsModule | undefined;
  const t = await startTestApp(env, {
    modules: async (ctx, identity) => {
      wal = await createWal(ctx);
      payments = await createPayments(ctx, {
        events: wal.events,
        resolveTenant: identity.resolveTenant,
        ...(options.findOrder ? { findOrder: options.findOrder } : {}),
      });
      return [wal, payments];
    },
  });
  return Object.assign(t, { wal: wal!, payments: payments! });
}

export type Shop = ShopWithStaff;

export const createShop = createShopWithStaff;

/** A signal nobody aborts. */
export const noAbort = () => new AbortController().signal;

/** Input for PaymentsApi.authorize: a new key and order, 1000 EUR cents, the test provider. */
export function authorizeInput(
  token: string,
  fields: Partial<{ key: string; amount: number; orderId: string }> = {},
) {
  return {
    key: fields.key ?? `checkout-${uuidv7()}`,
    orderId: fields.orderId ?? uuidv7(),
    amount: fields.amount ?? 1000,
    currency: 'EUR',
    provider: 'test',
    token,
  };
}

/** The events of the tenant's payment-events namespace, oldest first (type, subject, data). */
export async function paymentEvents(t: TestApp, tenantId: string, subject?: string) {
  const rows = await withTenant(t.ctx.db.kysely, tenantId, async (trx) => {
    const { rows } = await sql<{ type: string; subject: string; payload: unknown }>`
      select headers->>'ce-type' as type, headers->>'ce-subject' as subject, payload
      from wal.messages where namespace = 'payment-events' order by id`.execute(trx);
    return rows;
  });
  const events = rows.map((r) => ({
    type: r.type,
    subject: r.subject,
    data: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Payment,
  }));
  return subject ? events.filter((e) => e.subject === subject) : events;
}

/** The PSP's operations of one authorization key's charge, and the charge. */
export async function pspCharge(t: PaymentsTestApp, tenantId: string, transactionOrKey: string) {
  const ledger = await t.payments.testProvider.ledger(tenantId);
  const charge = ledger.charges.find(
    (c) => c.id === transactionOrKey || c.idempotencyKey === transactionOrKey,
  );
  const operations = ledger.operations.filter((o) => charge && o.chargeId === charge.id);
  return { charge, operations };
}

/** Posts a webhook delivery (its exact body and headers) as the PSP would. */
export function deliver(t: TestApp, delivery: { headers: Record<string, string>; body: string }) {
  return t.app.inject({
    method: 'POST',
    url: '/api/v1/payments/webhooks/test',
    headers: delivery.headers,
    payload: delivery.body,
  });
}

/** Fails the test with the answer unless it has the status. */
export function expectStatus(response: LightMyRequestResponse, status: number, what: string) {
  if (response.statusCode !== status) throw new Error(`${what}: ${response.statusCode} ${response.body}`);
}

export { send, uuidv7 };
