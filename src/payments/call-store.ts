import { sql } from 'kysely';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { PaymentStatus } from './payment-machine.ts';
import { paymentMachine } from './payment-machine.ts';
import { type Change, changeSet, type NewPayment } from './payment-store.ts';
import type { OperationKind, OperationOutcome, PaymentsTrx } from './tables.ts';
import { type PaymentOperation, type PaymentRow, toOperation } from './views.ts';

/*
 * The provider calls' records (payments.operations: one row per call, or per webhook), and the
 * statements the checkout's usual case needs that start or finish a call together with the
 * payment's change, one round trip each.
 */

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
