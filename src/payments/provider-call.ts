import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { PaymentsDeps } from './deps.ts';
import { finishOperation } from './payment-store.ts';

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
