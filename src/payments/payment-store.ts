import { sql } from 'kysely';
import { AppError } from '../platform/http/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import { type FailureCode, type PaymentStatus, paymentMachine } from './payment-machine.ts';
import type { OperationKind, OperationOutcome, PaymentsTable, PaymentsTrx } from './tables.ts';
import { type PaymentOperation, type PaymentRow, toOperation } from './views.ts';

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
 * rest of trx either way. The same key with another order, amount, currency or provider is 409.
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
    row.provider === input.provider;
  if (!same) {
    throw new AppError(
      'IDEMPOTENCY_KEY_REUSED',
      `payment key ${input.key} was used for another order, amount, currency or provider`,
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
function changeSet(change: Change & { status?: PaymentStatus }) {
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

/**
 * In one statement: records the call's outcome on its operation (as finishOperation does) and,
 * when the payment of `key` is still `from`, moves it to `to` (which the machine must allow from
 * `from`) with the change. Answers the payment after it, or undefined when it was no longer
 * `from` (settled meanwhile: the caller reads how with lockByKey).
 */
export function finishCallAndMove(
  trx: PaymentsTrx,
  operation: { id: string; outcome: OperationOutcome; detail: string | null },
  key: string,
  from: PaymentStatus,
  change: Change & { status?: PaymentStatus },
): Promise<PaymentRow | undefined> {
  if (change.status !== undefined) paymentMachine.assert(from, change.status);
  return trx
    .with('finished', (db) =>
      db
        .updateTable('payments.operations')
        .set(operationOutcome(operation.outcome, operation.detail))
        .where('id', '=', operation.id)
        .returning('id'),
    )
    .updateTable('payments.payments')
    .set(changeSet(change))
    .where('key', '=', key)
    .where('status', '=', from)
    .returningAll()
    .executeTakeFirst();
}

/**
 * In one statement: creates the payment of `input` already processing (its pending state never
 * seen outside this transaction) with its first provider call's operation started. Undefined,
 * with nothing written, when a payment of input.key exists: ensurePayment then finds it.
 */
export async function createProcessing(
  trx: PaymentsTrx,
  input: NewPayment,
  operation: { id: string; kind: OperationKind; key: string },
): Promise<PaymentRow | undefined> {
  const { rows } = await sql<PaymentRow>`
    with created as (
      insert into payments.payments (id, tenant_id, order_id, key, amount, currency, status, provider, token,
        refunded_amount)
      values (${uuidv7()}, ${input.tenantId}, ${input.orderId}, ${input.key}, ${input.amount}, ${input.currency},
        'processing', ${input.provider}, ${input.token}, 0)
      on conflict on constraint payments_key do nothing
      returning *
    ), started as (
      insert into payments.operations (id, tenant_id, payment_id, kind, source, idempotency_key, amount, outcome)
      select ${operation.id}, c.tenant_id, c.id, ${operation.kind}, 'call', ${operation.key}, c.amount, 'started'
      from created c
    )
    select * from created`.execute(trx);
  return rows[0];
}

/**
 * In one statement: locks the payment of `key` and, when it is `when`, starts a provider call's
 * operation on it for its whole amount (startOperation's row). Answers the payment as locked and
 * whether the operation was started.
 */
export async function lockAndStartCall(
  trx: PaymentsTrx,
  key: string,
  when: PaymentStatus,
  operation: { id: string; kind: OperationKind; key: string },
): Promise<{ row: PaymentRow; started: boolean } | undefined> {
  const { rows } = await sql<PaymentRow & { started: boolean }>`
    with locked as (
      select * from payments.payments where key = ${key} for update
    ), started as (
      insert into payments.operations (id, tenant_id, payment_id, kind, source, idempotency_key, amount, outcome)
      select ${operation.id}, l.tenant_id, l.id, ${operation.kind}, 'call', ${operation.key}, l.amount, 'started'
      from locked l where l.status = ${when}
      returning id
    )
    select l.*, exists (select from started) as started from locked l`.execute(trx);
  const found = rows[0];
  if (!found) return undefined;
  const { started, ...row } = found;
  return { row, started };
}

/** Records a call to the provider as started; finishOperation writes its outcome. */
export async function startOperation(
  trx: PaymentsTrx,
  op: { tenantId: string; paymentId: string; kind: OperationKind; key: string; amount: number | null },
): Promise<string> {
  const id = uuidv7();
  await trx
    .insertInto('payments.operations')
    .values({
      id,
      tenant_id: op.tenantId,
      payment_id: op.paymentId,
      kind: op.kind,
      source: 'call',
      idempotency_key: op.key,
      amount: op.amount,
      outcome: 'started',
      detail: null,
    })
    .execute();
  return id;
}

const operationOutcome = (outcome: OperationOutcome, detail: string | null) => ({
  outcome,
  detail: detail?.slice(0, 1000) ?? null,
  finished_at: new Date(),
});

export async function finishOperation(
  trx: PaymentsTrx,
  id: string,
  outcome: OperationOutcome,
  detail: string | null = null,
): Promise<void> {
  await trx
    .updateTable('payments.operations')
    .set(operationOutcome(outcome, detail))
    .where('id', '=', id)
    .execute();
}

/** Records a webhook the provider sent about the payment. */
export async function recordWebhook(
  trx: PaymentsTrx,
  op: { tenantId: string; paymentId: string; webhookId: string; outcome: OperationOutcome; detail: string },
): Promise<void> {
  const now = new Date();
  await trx
    .insertInto('payments.operations')
    .values({
      id: uuidv7(),
      tenant_id: op.tenantId,
      payment_id: op.paymentId,
      kind: 'authorize',
      source: 'webhook',
      idempotency_key: op.webhookId,
      amount: null,
      outcome: op.outcome,
      detail: op.detail.slice(0, 1000),
      created_at: now,
      finished_at: now,
    })
    .execute();
}

/** The payment's calls to its provider, oldest first. */
export async function listOperations(trx: PaymentsTrx, paymentId: string): Promise<PaymentOperation[]> {
  const rows = await trx
    .selectFrom('payments.operations')
    .selectAll()
    .where('payment_id', '=', paymentId)
    .orderBy('id')
    .limit(1000)
    .execute();
  return rows.map(toOperation);
}
