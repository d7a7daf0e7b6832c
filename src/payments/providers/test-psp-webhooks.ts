import { isoTime, withSystem } from '../../platform/db/index.ts';
import { signWebhook } from '../../platform/webhook-signature.ts';
import type { TestPspDb } from './test-psp-tables.ts';

/** A webhook as the PSP sends it: the Standard Webhooks headers and the exact body they sign. */
export type WebhookDelivery = { headers: Record<string, string>; body: string };

/** The body of a test PSP webhook: a pending authorization was settled. */
export type TestPspEvent = {
  id: string;
  type: 'charge.authorized' | 'charge.failed';
  created: number;
  data: {
    merchantId: string;
    transactionId: string;
    authorizationKey: string;
    amount: number;
    currency: string | null;
    status: 'authorized' | 'failed';
    failureCode: 'card_declined' | null;
    failureMessage: string | null;
  };
};

/** What the PSP's books hold for one merchant, oldest first: for tests and the CLI. */
export type TestPspLedger = {
  charges: Array<{
    id: string;
    idempotencyKey: string;
    amount: number;
    currency: string | null;
    token: string | null;
    status: string;
    declineCode: string | null;
    capturedAmount: number;
    refundedAmount: number;
    createdAt: string;
  }>;
  operations: Array<{
    id: string;
    idempotencyKey: string;
    kind: 'authorize' | 'capture' | 'void' | 'refund';
    chargeId: string | null;
    amount: number | null;
    result: unknown;
    createdAt: string;
  }>;
};

const secrets = new WeakMap<object, Promise<string>>();

/**
 * The secret the test PSP signs its webhooks with (made once by migration 0025), read once per
 * process and database: the PSP signs with it and Mercato's webhook route verifies with it.
 */
export function webhookSecret(db: TestPspDb): Promise<string> {
  let secret = secrets.get(db);
  if (!secret) {
    secret = withSystem(db, (trx) =>
      trx.selectFrom('test_psp.settings').select('webhook_secret').executeTakeFirstOrThrow(),
    ).then((row) => row.webhook_secret);
    // A failed read is not kept: the next call tries again.
    secret.catch(() => secrets.delete(db));
    secrets.set(db, secret);
  }
  return secret;
}

/**
 * Settles a pending authorization at the PSP (authorized, or failed as card_declined) and
 * returns the signed webhook it would send about it. Settling it again the same way returns the
 * same event (a redelivery, same webhook-id); settling a charge that is not pending throws.
 */
export async function settlePending(
  db: TestPspDb,
  transactionId: string,
  outcome: 'authorized' | 'failed',
): Promise<WebhookDelivery> {
  const charge = await withSystem(db, async (trx) => {
    const row = await trx
      .selectFrom('test_psp.charges')
      .selectAll()
      .where('id', '=', transactionId)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new Error(`test PSP: no charge ${transactionId}`);
    const authorization = await trx
      .selectFrom('test_psp.operations')
      .select('result')
      .where('charge_id', '=', row.id)
      .where('kind', '=', 'authorize')
      .executeTakeFirst();
    const stored = authorization?.result;
    const answered = (typeof stored === 'string' ? JSON.parse(stored) : stored) as
      | { status?: string }
      | undefined;
    // A charge settled this way before is sent again (a redelivery); one never pending, never.
    if (row.status === outcome && answered?.status === 'pending') return row;
    if (row.status !== 'pending')
      throw new Error(`test PSP: charge ${transactionId} is ${row.status}, not pending`);
    return trx
      .updateTable('test_psp.charges')
      .set({
        status: outcome,
        decline_code: outcome === 'failed' ? 'card_declined' : null,
        updated_at: new Date(),
      })
      .where('id', '=', transactionId)
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  const event: TestPspEvent = {
    id: `evt_${charge.id.slice('ch_'.length)}`,
    type: outcome === 'authorized' ? 'charge.authorized' : 'charge.failed',
    created: Math.floor(Date.now() / 1000),
    data: {
      merchantId: charge.merchant_id,
      transactionId: charge.id,
      authorizationKey: charge.idempotency_key,
      amount: Number(charge.amount),
      currency: charge.currency,
      status: outcome,
      failureCode: outcome === 'failed' ? 'card_declined' : null,
      failureMessage: outcome === 'failed' ? 'the card was declined' : null,
    },
  };
  const body = JSON.stringify(event);
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    headers: {
      'content-type': 'application/json',
      'webhook-id': event.id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(await webhookSecret(db), event.id, timestamp, body),
    },
    body,
  };
}

/** The merchant's charges and the operations the PSP took, oldest first. */
export async function testPspLedger(db: TestPspDb, merchantId: string): Promise<TestPspLedger> {
  return withSystem(db, async (trx) => {
    const charges = await trx
      .selectFrom('test_psp.charges')
      .selectAll()
      .where('merchant_id', '=', merchantId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    const operations = await trx
      .selectFrom('test_psp.operations')
      .selectAll()
      .where('merchant_id', '=', merchantId)
      .orderBy('id')
      .execute();
    return {
      charges: charges.map((c) => ({
        id: c.id,
        idempotencyKey: c.idempotency_key,
        amount: Number(c.amount),
        currency: c.currency,
        token: c.token,
        status: c.status,
        declineCode: c.decline_code,
        capturedAmount: Number(c.captured_amount),
        refundedAmount: Number(c.refunded_amount),
        createdAt: isoTime(c.created_at),
      })),
      operations: operations.map((o) => ({
        id: o.id,
        idempotencyKey: o.idempotency_key,
        kind: o.kind,
        chargeId: o.charge_id,
        amount: o.amount === null ? null : Number(o.amount),
        result: typeof o.result === 'string' ? JSON.parse(o.result) : o.result,
        createdAt: isoTime(o.created_at),
      })),
    };
  });
}
