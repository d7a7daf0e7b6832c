import { AppError } from '../platform/http/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import { type FailureCode, type PaymentStatus, paymentMachine } from './payment-machine.ts';
import type { PaymentsTable, PaymentsTrx } from './tables.ts';
import type { PaymentRow } from './views.ts';

/** The provider idempotency keys of a payment's calls, derived from its key (the same after a crash). */
export const providerKeys = {
  authorize: (key: string) => `authorize:${key}`,
  capture: (key: string) => `capture:${key}`,
  void: (key: string) => `void:${key}`,
  // The payment id (fixed length) keeps two payments' refund keys from ever colliding.
  refund: (paymentId: string, refundKey: string) => `refund:${paymentId}:${refundKey}`,
};

export type NewPayment = {
  tenantId: string;
  key: string;
  orderId: string;
  amount: number;
  currency: string;
  provider: string;
  token: string;
};

/**
 * The payment of input.key, created pending when there is none (created: true); locked for the
 * rest of trx either way. The same key with another order, amount, currency, provider or token
 * is 409 (the checkout's replays send its saga's token, kept from the saga's start, again).
 */
export async function ensurePayment(
  trx: PaymentsTrx,
  input: NewPayment,
): Promise<{ row: PaymentRow; created: boolean }> {
  const inserted = await trx
    .insertInto('payments.payments')
    .values({
      id: uuidv7(),
      tenant_id: input.tenantId,
      order_id: input.orderId,
      key: input.key,
      amount: input.amount,
      currency: input.currency,
      status: 'pending',
      provider: input.provider,
      token: input.token,
      provider_transaction_id: null,
      refunded_amount: 0,
      failure_code: null,
      failure_message: null,
    })
    .onConflict((oc) => oc.constraint('payments_key').doNothing())
    .returningAll()
    .executeTakeFirst();
  if (inserted) return { row: inserted, created: true };
  const row = await lockByKey(trx, input.key);
  if (!row) throw new Error(`payment ${input.key} neither inserted nor found`);
  const same =
    row.order_id === input.orderId.toLowerCase() &&
    Number(row.amount) === input.amount &&
    row.currency === input.currency &&
    row.provider === input.provider &&
    row.token === input.token;
  if (!same) {
    throw new AppError(
      'IDEMPOTENCY_KEY_REUSED',
      `payment key ${input.key} was used for another order, amount, currency, provider or token`,
      { paymentId: row.id },
    );
  }
  return { row, created: false };
}

/** The payment of key, locked until trx ends; undefined when there is none. */
export function lockByKey(trx: PaymentsTrx, key: string): Promise<PaymentRow | undefined> {
  return trx
    .selectFrom('payments.payments')
    .selectAll()
    .where('key', '=', key)
    .forUpdate()
    .executeTakeFirst();
}

/** The payment, locked until trx ends; undefined when there is none (or id is no UUID). */
export async function lockById(trx: PaymentsTrx, id: string): Promise<PaymentRow | undefined> {
  if (!isUuid(id)) return undefined;
  return trx.selectFrom('payments.payments').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

/** The payment, or 404. */
export async function getPayment(trx: PaymentsTrx, id: string): Promise<PaymentRow> {
  const row = isUuid(id)
    ? await trx.selectFrom('payments.payments').selectAll().where('id', '=', id).executeTakeFirst()
    : undefined;
  if (!row) throw new AppError('NOT_FOUND', `payment ${id} not found`);
  return row;
}

export function findByKey(trx: PaymentsTrx, key: string): Promise<PaymentRow | undefined> {
  return trx.selectFrom('payments.payments').selectAll().where('key', '=', key).executeTakeFirst();
}

/** The order's payments, oldest first. */
export function listByOrder(trx: PaymentsTrx, orderId: string): Promise<PaymentRow[]> {
  if (!isUuid(orderId)) return Promise.resolve([]);
  return trx
    .selectFrom('payments.payments')
    .selectAll()
    .where('order_id', '=', orderId)
    .orderBy('id')
    .limit(1000)
    .execute();
}

/** The payment a provider transaction (or, before its id was known, an authorization key) belongs to, locked. */
export async function lockByTransaction(
  trx: PaymentsTrx,
  transactionId: string,
  authorizationKey: string,
): Promise<PaymentRow | undefined> {
  const byTransaction = await trx
    .selectFrom('payments.payments')
    .selectAll()
    .where('provider_transaction_id', '=', transactionId)
    .forUpdate()
    .executeTakeFirst();
  if (byTransaction) return byTransaction;
  const prefix = providerKeys.authorize('');
  if (!authorizationKey.startsWith(prefix)) return undefined;
  return lockByKey(trx, authorizationKey.slice(prefix.length));
}

export type Change = {
  providerTransactionId?: string | null;
  refundedAmount?: number;
  failure?: { code: FailureCode; message: string };
  processed?: boolean;
};

/** Moves the locked payment to `to` (409 ILLEGAL_TRANSITION unless the machine allows it) with the change. */
export async function transition(
  trx: PaymentsTrx,
  row: PaymentRow,
  to: PaymentStatus,
  change: Change = {},
): Promise<PaymentRow> {
  paymentMachine.assert(row.status as PaymentStatus, to);
  return update(trx, row, { status: to, ...change });
}

/** The columns a change (and status) sets, updated_at with them. */
export function changeSet(change: Change & { status?: PaymentStatus }) {
  const now = new Date();
  const set: Partial<Record<keyof PaymentsTable, unknown>> = { updated_at: now };
  if (change.status !== undefined) set.status = change.status;
  if (change.providerTransactionId !== undefined) set.provider_transaction_id = change.providerTransactionId;
  if (change.refundedAmount !== undefined) set.refunded_amount = change.refundedAmount;
  if (change.failure) {
    set.failure_code = change.failure.code;
    set.failure_message = change.failure.message.slice(0, 1000);
  }
  if (change.processed) set.processed_at = now;
  return set as never;
}

/** Writes the change (and status) to the payment; answers the row after it. */
export function update(
  trx: PaymentsTrx,
  row: PaymentRow,
  change: Change & { status?: PaymentStatus },
): Promise<PaymentRow> {
  return trx
    .updateTable('payments.payments')
    .set(changeSet(change))
    .where('id', '=', row.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}
