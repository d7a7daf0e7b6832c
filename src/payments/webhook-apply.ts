import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { recordWebhook } from './call-store.ts';
import type { PaymentsDeps } from './deps.ts';
import { paymentEvent, publish } from './payment-events.ts';
import { lockByTransaction, transition } from './payment-store.ts';
import { type Payment, toPayment } from './views.ts';

/** What a verified webhook says: a pending authorization of the merchant (tenant) was settled. */
export type Settlement = {
  webhookId: string;
  merchantId: string;
  transactionId: string;
  authorizationKey: string;
  status: 'authorized' | 'failed';
  failureCode: 'card_declined' | 'insufficient_funds';
  failureMessage: string;
};

/** Reads a webhook body (already through the JSON guard); 400 VALIDATION_FAILED naming the first field that does not fit. */
export function readSettlement(webhookId: string, body: unknown): Settlement {
  const bad = (pointer: string, message: string) =>
    new AppError('VALIDATION_FAILED', `webhook field ${pointer} ${message}`, {
      errors: [{ in: 'body', pointer, message }],
    });
  const event = body as { type?: unknown; data?: Record<string, unknown> } | null;
  if (typeof event !== 'object' || event === null) throw bad('', 'must be an object');
  if (event.type !== 'charge.authorized' && event.type !== 'charge.failed') {
    throw bad('/type', 'must be charge.authorized or charge.failed');
  }
  const data = event.data;
  if (typeof data !== 'object' || data === null) throw bad('/data', 'must be an object');
  const text = (name: string, max = 300) => {
    const value = data[name];
    if (typeof value !== 'string' || value.length === 0 || value.length > max) {
      throw bad(`/data/${name}`, `must be a string of 1 to ${max} characters`);
    }
    return value;
  };
  const merchantId = text('merchantId');
  if (!isUuid(merchantId)) throw bad('/data/merchantId', 'must be a UUID');
  const code = data['failureCode'];
  return {
    webhookId,
    merchantId: merchantId.toLowerCase(),
    // Stored as the payment's provider_transaction_id, which holds 1 to 200 characters.
    transactionId: text('transactionId', 200),
    authorizationKey: text('authorizationKey'),
    status: event.type === 'charge.authorized' ? 'authorized' : 'failed',
    failureCode: code === 'insufficient_funds' ? 'insufficient_funds' : 'card_declined',
    failureMessage:
      typeof data['failureMessage'] === 'string' ? data['failureMessage'] : 'the card was declined',
  };
}

/**
 * Applies a settlement to the payment of its transaction, within the tenant it names only: a
 * processing payment becomes authorized or failed and publishes mercato.payment.authorized or
 * .failed. Once per webhook id (a replay has no second effect); a payment settled otherwise
 * meanwhile (voided) stays as it is. 404 when the tenant has no such payment, so the PSP retries.
 */
export async function applySettlement(
  deps: PaymentsDeps,
  settlement: Settlement,
  meta?: EventMeta,
): Promise<{ effect: 'applied' | 'duplicate' | 'ignored'; payment: Payment }> {
  const tenantId = settlement.merchantId;
  return withTenant(deps.db, tenantId, async (trx) => {
    const row = await lockByTransaction(trx, settlement.transactionId, settlement.authorizationKey);
    if (!row) throw new AppError('NOT_FOUND', `no payment of transaction ${settlement.transactionId}`);
    const first = await trx
      .insertInto('payments.webhook_deliveries')
      .values({ tenant_id: tenantId, id: settlement.webhookId, payment_id: row.id })
      .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!first) return { effect: 'duplicate', payment: toPayment(row) };
    const applies = row.status === 'processing';
    await recordWebhook(trx, {
      tenantId,
      paymentId: row.id,
      webhookId: settlement.webhookId,
      outcome: settlement.status,
      detail: applies ? `settled ${settlement.transactionId}` : `ignored: payment is ${row.status}`,
    });
    if (!applies) return { effect: 'ignored', payment: toPayment(row) };
    const after = toPayment(
      settlement.status === 'authorized'
        ? await transition(trx, row, 'authorized', {
            providerTransactionId: settlement.transactionId,
            processed: true,
          })
        : await transition(trx, row, 'failed', {
            providerTransactionId: settlement.transactionId,
            failure: { code: settlement.failureCode, message: settlement.failureMessage },
            processed: true,
          }),
    );
    await publish(deps.events, trx, tenantId, [paymentEvent(settlement.status, after)], meta);
    return { effect: 'applied', payment: after };
  });
}
