import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { finishOperation, startOperation } from './call-store.ts';
import type { PaymentsDeps } from './deps.ts';
import type { PaymentProvider } from './providers/provider.ts';
import type { OperationKind, PaymentsTrx } from './tables.ts';
import type { PaymentRow } from './views.ts';

/** A provider call started in a transaction: the payment of `key` as locked there, its provider, the call's operation. */
export type StartedCall = {
  done?: undefined;
  key: string;
  row: PaymentRow;
  provider: PaymentProvider;
  operationId: string;
};

/** In trx, on the locked payment of `key`: starts a provider call (its operation logged `started`) under `providerKey`. */
export async function startCall(
  deps: PaymentsDeps,
  trx: PaymentsTrx,
  call: {
    tenantId: string;
    key: string;
    row: PaymentRow;
    kind: OperationKind;
    providerKey: string;
    amount?: number;
  },
): Promise<StartedCall> {
  const { key, row } = call;
  const provider = deps.providers.get(row.provider);
  const operationId = await startOperation(trx, {
    tenantId: call.tenantId,
    paymentId: row.id,
    kind: call.kind,
    key: call.providerKey,
    amount: call.amount ?? Number(row.amount),
  });
  return { key, row, provider, operationId };
}

/**
 * Calls the provider for a started operation. A call that throws is noted on the operation
 * (aborted or error) and answered as the signal's reason when aborted, else as 502
 * PAYMENT_PROVIDER_ERROR; the operation stays for the same idempotency key to finish it.
 */
export async function callProvider<R>(
  deps: PaymentsDeps,
  tenantId: string,
  operationId: string,
  signal: AbortSignal,
  call: () => Promise<R>,
): Promise<R> {
  try {
    return await call();
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    await withTenant(deps.db, tenantId, (trx) =>
      finishOperation(trx, operationId, signal.aborted ? 'aborted' : 'error', detail),
    ).catch((err: unknown) =>
      deps.logger.warn({ err, tenantId }, 'payments: could not record a failed call'),
    );
    if (signal.aborted) throw error;
    throw new AppError(
      'PAYMENT_PROVIDER_ERROR',
      'the payment provider could not be reached',
      {},
      { cause: error },
    );
  }
}
