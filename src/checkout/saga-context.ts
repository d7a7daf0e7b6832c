import type { Logger } from 'pino';
import type { Order } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import type { CheckoutDeps } from './deps.ts';
import { type Saga, type SagaChanges, updateSaga } from './saga-store.ts';
import type { StepContext } from './step-definition.ts';
import type { CheckoutTrx, SagaFailure } from './tables.ts';

/** Attempts of one step (or compensation) in one run before the run leaves it to the watchdog. */
export const MAX_ATTEMPTS = 3;
export const BACKOFF_MS = [50, 250];

/** What the forward and backward halves of a run share. */
export type RunContext = {
  deps: CheckoutDeps;
  logger: Logger;
  timeoutMs: number;
  /**
   * How long a pending authorization is waited for, from the step's first attempt: the
   * operator's MERCATO_CHECKOUT_PENDING_TIMEOUT_MS, at most the reservation's TTL (whose stock
   * it holds meanwhile), never less than a step's timeout.
   */
  pendingMs: number;
  /** A lease outlives the step's deadline, so a live runner's step times out before anyone takes over. */
  leaseMs: number;
  pauseAfter: string | undefined;
  tx<T>(tenantId: string, fn: (trx: CheckoutTrx) => Promise<T>): Promise<T>;
  /**
   * The step's context, with the order read in trx, or `known`: the order as this run last left
   * it (only the saga's runner, which holds the lease, changes an order while its saga runs).
   */
  contextOf(trx: CheckoutTrx, saga: Saga, signal: AbortSignal, known?: Order): Promise<StepContext>;
};

export const later = (ms: number) => new Date(Date.now() + ms);

/**
 * What the events a saga's own steps publish tell subscribers in process (DomainEvent.hints):
 * `bySaga`, the saga settled it and goes on by its own answer; `stockPool`, the reservation the
 * order's units came from (null: available stock, so no flash sale's).
 */
export const sagaHints = (saga: Saga) => ({ bySaga: true, stockPool: saga.stockPool });

export function runContext(deps: CheckoutDeps, logger: Logger): RunContext {
  const timeoutMs = deps.ctx.config.checkoutStepTimeoutMs;
  return {
    deps,
    logger,
    timeoutMs,
    pendingMs: Math.max(
      timeoutMs,
      Math.min(deps.ctx.config.checkoutPendingTimeoutMs, deps.ctx.config.reservationTtlSeconds * 1000),
    ),
    leaseMs: timeoutMs + 2000,
    pauseAfter: deps.ctx.config.checkoutPauseAfterStep,
    tx: (tenantId, fn) => withTenant(deps.db, tenantId, (trx) => fn(trx as CheckoutTrx)),
    async contextOf(trx, saga, signal, known) {
      const order = known ?? (await deps.orders.get(trx, saga.tenantId, saga.orderId));
      if (!order) throw new Error(`saga ${saga.id}: order ${saga.orderId} is missing`);
      const meta: EventMeta = { correlationId: order.correlationId ?? undefined, causationId: saga.id };
      return { deps, saga, order, signal, meta, actor: `saga:${saga.id}` };
    },
  };
}

/** The change that moves a saga to compensating from the failed step (it is undone too: it may have half happened). */
export const toCompensate = (failure: SagaFailure): SagaChanges => ({
  status: 'compensating',
  failure,
  deadlineAt: null,
});

/**
 * A completed saga that a cancel undoes: compensating from its last step (refund, stock back),
 * the order then cancelled with the cancel's reason.
 */
export const toCancelCompleted = (cancel: { actor: string; reason: string }): SagaChanges => ({
  status: 'compensating',
  step: 'confirm',
  failure: { reason: 'cancelled', code: 'CANCELLED', message: cancel.reason },
  cancelRequested: cancel,
  finishedAt: null,
});

/**
 * A finished (failed or cancelled) saga whose order's payments hold money again, a refund of
 * them having failed after its undoing gave back the rest: compensating from authorize (which
 * gives back every payment of the order, giveBack; the steps before it find their effects undone
 * and change nothing), the order staying as it is. Its failure and cancel are kept: it ends as it
 * ended before.
 */
export const toGiveBackAgain: SagaChanges = {
  status: 'compensating',
  step: 'authorize',
  deadlineAt: null,
  finishedAt: null,
  leaseOwner: null,
  leaseUntil: null,
};

/** Moves to compensating from the failed step. */
export const toCompensating = (trx: CheckoutTrx, saga: Saga, failure: SagaFailure) =>
  updateSaga(trx, saga.id, toCompensate(failure));
