import type { CheckoutApi } from '../checkout/index.ts';
import type { OrdersApi } from '../orders/index.ts';
import type { AppContext } from '../platform/context.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { WalModule } from '../wal/index.ts';
import type { ExceptionRow, ViewedRow } from './exception-view.ts';
import type { ExceptionsDb, ExceptionsTrx } from './tables.ts';

/** What createExceptions receives: the bus, the WAL's dead letters, and the modules a retry drives. */
export type ExceptionsModuleDeps = {
  events: EventBus;
  wal: Pick<WalModule, 'onDeadLetter' | 'acceptWrites' | 'deadLetters'>;
  orders: OrdersApi;
  checkout: CheckoutApi;
};

/**
 * How the module's parts reach each other. module.ts fills it once every part exists, so a part
 * calls another through it without importing it (capture calls the alerts, a bulk retry the
 * retry service).
 */
export type ExceptionHooks = {
  /** Evaluates the alert rules for exceptions just captured or repeated, in the capturing transaction. */
  onCaptured(trx: ExceptionsTrx, tenantId: string, captured: ViewedRow[]): Promise<void>;
  /** Evaluates the alert rules after a failed retry, in the transaction that recorded it. */
  onRetryFailed(trx: ExceptionsTrx, tenantId: string, exception: ViewedRow): Promise<void>;
  /** Drops the cached payload of an exception that changed (repeated, retried, resolved). */
  invalidatePayload(tenantId: string, transactionId: string): Promise<void>;
  /**
   * The exception's payload for its detail: from its source (a dead letter's message, the
   * interface's source through its breaker, cached), else the payload it arrived with.
   */
  loadPayload(tenantId: string, exception: ExceptionRow): Promise<PayloadAnswer>;
  /** Retries one exception as `actor` (POST .../retry and the bulk retry). */
  retry(tenantId: string, transactionId: string, actor: string): Promise<RetryOutcome>;
};

/** A payload as the detail shows it, and where it came from (or why it could not be had). */
export type PayloadAnswer = {
  payload: unknown;
  from: 'source' | 'dead-letter' | 'event' | 'cache' | 'none';
  /** Why the source gave nothing (circuit open, timeout, 404); the detail still answers. */
  error?: string | undefined;
};

/** The answer of one retry: the attempt recorded, and the exception's status after it. */
export type RetryOutcome = {
  attempt: number;
  action: 'requeue' | 'source' | 'checkout';
  status: 'pending' | 'succeeded' | 'failed';
  outcome: string | null;
  exceptionStatus: string;
};

/** What the module's parts share. */
export type ExceptionsDeps = ExceptionsModuleDeps & {
  ctx: AppContext;
  db: ExceptionsDb;
  hooks: ExceptionHooks;
};
