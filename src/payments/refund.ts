import { sql } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { finishOperation } from './call-store.ts';
import type { PaymentsDeps } from './deps.ts';
import { paymentEvent, publish, refundRecheckEvent } from './payment-events.ts';
import { type PaymentStatus, paymentMachine } from './payment-machine.ts';
import { lockByKey, providerKeys, transition } from './payment-store.ts';
import { callProvider, startCall } from './provider-call.ts';
import type { RefundResult } from './providers/provider.ts';
import type { PaymentsTrx } from './tables.ts';
import { type Payment, type PaymentRow, toPayment } from './views.ts';

export type RefundInput = { amount?: number | undefined; reason: string; refundKey: string };

const refundOf = (trx: PaymentsTrx, paymentId: string, refundKey: string) =>
  trx
    .selectFrom('payments.refunds')
    .selectAll()
    .where('payment_id', '=', paymentId)
    .where('refund_key', '=', refundKey)
    .forUpdate()
    .executeTakeFirst();

/** What is left to refund: captured, less refunded, less refunds still waiting for the provider. */
async function refundable(trx: PaymentsTrx, row: PaymentRow): Promise<number> {
  const { pending } = await trx
    .selectFrom('payments.refunds')
    .select(sql<string | number>`coalesce(sum(amount), 0)`.as('pending'))
    .where('payment_id', '=', row.id)
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return Number(row.amount) - Number(row.refunded_amount) - Number(pending);
}

/**
 * In trx: whether a payment of the order still holds money that nothing is giving back: an
 * authorization, or captured money neither refunded nor held by a refund still waiting for the
 * provider (a refund that failed holds nothing). One statement; no lock taken.
 */
export async function holdsMoney(trx: PaymentsTrx, orderId: string): Promise<boolean> {
  const { rows } = await sql<{ holds: boolean }>`
    select exists (
      select from payments.payments p
      where p.order_id = ${orderId}
        and (p.status = 'authorized'
          or (p.status in ('completed', 'partially_refunded')
            and p.amount - p.refunded_amount > coalesce((
              select sum(r.amount) from payments.refunds r
              where r.payment_id = p.id and r.status = 'pending'), 0)))
    ) as holds`.execute(trx);
  return rows[0]?.holds === true;
}

/** Records a new refund of the locked payment (publishing mercato.payment.refund-initiated). */
async function openRefund(
  deps: PaymentsDeps,
  trx: PaymentsTrx,
  row: PaymentRow,
  input: RefundInput,
  meta: EventMeta | undefined,
) {
  const status = row.status as PaymentStatus;
  if (status !== 'completed' && status !== 'partially_refunded') paymentMachine.assert(status, 'refunded');
  const left = await refundable(trx, row);
  const amount = input.amount ?? left;
  if (amount <= 0 || amount > left) {
    throw new AppError(
      'REFUND_EXCEEDS_CAPTURED',
      `payment ${row.id} has ${left} ${row.currency} left to refund; ${amount} asked`,
      { paymentId: row.id, refundable: Math.max(0, left) },
    );
  }
  const refund = await trx
    .insertInto('payments.refunds')
    .values({
      id: uuidv7(),
      tenant_id: row.tenant_id,
      payment_id: row.id,
      refund_key: input.refundKey,
      amount,
      reason: input.reason,
      status: 'pending',
      provider_refund_id: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  // With its recheck: a refund still pending then is asked again under its key (refund-recheck.ts).
  const recheck = refundRecheckEvent(
    { refundId: refund.id, paymentId: row.id },
    deps.ctx.config.checkoutStepTimeoutMs + 1000,
  );
  await publish(
    deps.events,
    trx,
    row.tenant_id,
    [paymentEvent('refund-initiated', toPayment(row)), recheck],
    meta,
  );
  return refund;
}

/**
 * Refunds input.amount (Default: all not yet refunded) of the captured payment of `key`:
 * partially_refunded, or refunded once nothing is left, publishing mercato.payment.refund-initiated
 * then .refund-completed (.refund-failed when the provider refuses it). input.refundKey makes it
 * idempotent: the same key again answers the payment without a second refund. Past what is left:
 * 409 REFUND_EXCEEDS_CAPTURED; a payment not captured: 409 ILLEGAL_TRANSITION; a provider refusal
 * or a call that fails: 502 PAYMENT_PROVIDER_ERROR (the latter naming the refundKey that finishes it;
 * a refusal says `refused: 'now'`, or `'earlier'` for a key whose refund was refused before: that
 * key is spent, and the refund is asked for again under another).
 */
export async function refundPayment(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  input: RefundInput,
  signal: AbortSignal,
  meta?: EventMeta,
): Promise<Payment> {
  signal.throwIfAborted();
  const start = await withTenant(deps.db, tenantId, async (trx) => {
    const row = await lockByKey(trx, key);
    if (!row) throw new AppError('NOT_FOUND', `payment ${key} not found`);
    let refund = await refundOf(trx, row.id, input.refundKey);
    if (refund && input.amount !== undefined && Number(refund.amount) !== input.amount) {
      throw new AppError(
        'IDEMPOTENCY_KEY_REUSED',
        `refund key ${input.refundKey} was used for another amount`,
      );
    }
    if (refund?.status === 'succeeded') return { done: toPayment(row) };
    if (refund?.status === 'failed') {
      // `refused: 'earlier'`: no call was made now; the key is spent (another key asks again).
      throw new AppError('PAYMENT_PROVIDER_ERROR', `refund ${input.refundKey} was refused by the provider`, {
        paymentId: row.id,
        refundKey: input.refundKey,
        refused: 'earlier',
      });
    }
    refund ??= await openRefund(deps, trx, row, input, meta);
    const providerKey = providerKeys.refund(row.id, input.refundKey);
    const amount = Number(refund.amount);
    const { provider, operationId } = await startCall(deps, trx, {
      tenantId,
      key,
      row,
      kind: 'refund',
      providerKey,
      amount,
    });
    return { row, provider, providerKey, amount, operationId };
  });
  if (start.done) return start.done;
  const { row, provider, providerKey, amount, operationId } = start;

  // A call that fails leaves the refund pending (its amount held back): the same refundKey finishes
  // it, so the 502 names that key (the caller may not have chosen it: the route makes one up).
  const result: RefundResult = await callProvider(deps, tenantId, operationId, signal, () =>
    provider.refund(
      {
        merchantId: tenantId,
        idempotencyKey: providerKey,
        transactionId: row.provider_transaction_id ?? '',
        amount,
      },
      signal,
    ),
  ).catch((error: unknown) => {
    if (!(error instanceof AppError) || error.code !== 'PAYMENT_PROVIDER_ERROR') throw error;
    throw new AppError(
      'PAYMENT_PROVIDER_ERROR',
      `${error.message}: the refund stays pending until asked again with refundKey ${input.refundKey}`,
      { paymentId: row.id, refundKey: input.refundKey },
      { cause: error.cause },
    );
  });

  const payment = await withTenant(deps.db, tenantId, async (trx) => {
    await finishOperation(trx, operationId, result.status, result.status === 'error' ? result.message : null);
    const locked = await lockByKey(trx, key);
    const refund = locked && (await refundOf(trx, locked.id, input.refundKey));
    if (!locked || !refund) throw new Error(`payment ${key} or its refund vanished`);
    if (refund.status !== 'pending') return toPayment(locked);
    await trx
      .updateTable('payments.refunds')
      .set({
        status: result.status === 'refunded' ? 'succeeded' : 'failed',
        provider_refund_id: result.status === 'refunded' ? result.refundId : null,
        updated_at: new Date(),
      })
      .where('id', '=', refund.id)
      .execute();
    if (result.status !== 'refunded') {
      // The refund announced by refund-initiated will never complete: say so.
      const unchanged = toPayment(locked);
      await publish(deps.events, trx, tenantId, [paymentEvent('refund-failed', unchanged)], meta);
      return unchanged;
    }
    const refunded = Number(locked.refunded_amount) + amount;
    const to = refunded === Number(locked.amount) ? 'refunded' : 'partially_refunded';
    const after = toPayment(await transition(trx, locked, to, { refundedAmount: refunded }));
    await publish(deps.events, trx, tenantId, [paymentEvent('refund-completed', after)], meta);
    return after;
  });
  if (result.status === 'error') {
    throw new AppError('PAYMENT_PROVIDER_ERROR', `the provider refused the refund: ${result.message}`, {
      paymentId: payment.id,
      refundKey: input.refundKey,
      refused: 'now',
    });
  }
  return payment;
}
