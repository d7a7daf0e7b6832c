import type { FastifyInstance } from 'fastify';
import type { Held } from '../checkout/index.ts';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { secretBoxOf } from '../platform/secrets.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { signWebhook } from '../platform/webhook-signature.ts';
import { createSsrfGuard } from '../wal/index.ts';
import { recordAudit } from './audit.ts';
import type { ExceptionHooks, ExceptionsDeps, RetryOutcome } from './deps.ts';
import type { ExceptionRow } from './exception-view.ts';
import { exceptionStatus } from './lifecycle.ts';
import {
  checkProvider,
  createOrderRetries,
  describeOrder,
  failedOrder,
  ORDER_NEEDS_PAYMENT,
  type RetryPayment,
  startRetryCheckout,
} from './order-retry.ts';
import { createPayloadCache } from './payload-cache.ts';
import { createPayloadLoader, describeFailure } from './payloads.ts';
import { type Finished, finishRetry } from './retry-outcome.ts';
import { retryRoutes } from './retry-routes.ts';
import { createRetrySettler } from './retry-settler.ts';
import {
  type AttemptRow,
  findException,
  insertAttempt,
  markRetrying,
  pendingAttempts,
} from './retry-store.ts';
import { createSourceBreakers, type SourcePermit, SourceUnavailableError } from './source-breakers.ts';
import { createSourceClient } from './source-client.ts';
import { sourceRoutes } from './source-routes.ts';
import { getSource, type SourceRow, targetOf } from './source-store.ts';
import type { ExceptionsTrx, InterfaceType, RetryAction } from './tables.ts';

/** The attempt a retry made (or is waiting for) and the exception after it. */
export type RetryResult = { attempt: AttemptRow; exception: ExceptionRow };

/**
 * What a retry request may bring besides its exception: an order's retry needs `payment` (and its
 * new order number, taken before the transaction); `meta` is the request's, for the order's events.
 */
export type RetryOptions = { payment?: RetryPayment | undefined; meta?: EventMeta | undefined };

type Begun =
  | { kind: 'finished'; finished: Finished }
  | { kind: 'requeued'; attempt: AttemptRow; exception: ExceptionRow }
  | { kind: 'checkout'; attempt: AttemptRow; exception: ExceptionRow; held: Held }
  | {
      kind: 'source';
      attempt: AttemptRow;
      exception: ExceptionRow;
      source: SourceRow;
      interfaceType: InterfaceType;
    };

/**
 * Retries, sources and payload retrieval: POST /exceptions/{transactionId}/retry re-submits where
 * the failure happened (a dead letter is requeued, an interface's payload is POSTed, signed, to
 * its source's retry endpoint through the source's breaker, a failed order's checkout runs again
 * as a new order paid with the operator's payment), GET .../retries lists the attempts,
 * /exceptions/sources configures the sources, and loadPayload serves the detail's payload.
 */
export function createRetries(deps: ExceptionsDeps): {
  retry: ExceptionHooks['retry'];
  invalidatePayload: ExceptionHooks['invalidatePayload'];
  loadPayload: ExceptionHooks['loadPayload'];
  routes: (app: FastifyInstance) => Promise<void>;
  close(): Promise<void>;
} {
  const { ctx, db } = deps;
  const logger = ctx.logger.child({ module: 'exceptions', part: 'retry' });
  // The process's box, shared with the WAL's targets: the keys are loaded once.
  const box = secretBoxOf(ctx);
  const guard = createSsrfGuard(ctx.config.walPrivateTargets);
  const client = createSourceClient(guard, logger);
  const breakers = createSourceBreakers({
    failures: ctx.config.sourceBreakerFailures,
    halfOpenMs: ctx.config.sourceBreakerHalfOpenMs,
  });
  const cache = createPayloadCache(ctx);
  const loadPayload = createPayloadLoader({ deps, box, client, breakers, cache });
  const invalidatePayload = (tenantId: string, transactionId: string) => cache.drop(tenantId, transactionId);
  const settler = createRetrySettler(deps, invalidatePayload, logger);
  const orders = createOrderRetries({ deps, logger, watch: settler.watch, invalidate: invalidatePayload });

  /**
   * In the tenant's transaction: the checks, the attempt recorded, and a requeue made at once (a
   * checkout's new order and its saga's first steps likewise).
   */
  async function begin(
    trx: ExceptionsTrx,
    tenantId: string,
    transactionId: string,
    actor: string,
    options: RetryOptions & { number?: number | undefined },
    held: { permit?: SourcePermit },
  ): Promise<Begun> {
    const row = await findException(trx, tenantId, transactionId, { lock: true });
    if (!row) throw new AppError('NOT_FOUND', `exception ${transactionId} not found`);
    if (options.payment && row.source_ref?.kind !== 'order') throw paymentNotTaken();
    const pending = await pendingAttempts(trx, tenantId, { transactionId });
    if (pending.length > 0 || row.status === 'RETRY_IN_PROGRESS') {
      throw new AppError('RETRY_IN_PROGRESS', 'a retry of this exception is still waiting for its outcome');
    }
    // The lifecycle's machine: resolved, closed and successfully retried exceptions are not retried.
    exceptionStatus.assert(row.status, 'RETRY_IN_PROGRESS');
    if (!row.retryable) throw new AppError('NOT_RETRYABLE', 'this exception is classified as not retryable');
    if (row.retry_count >= row.retry_limit) {
      throw new AppError('RETRY_LIMIT_REACHED', `retried ${row.retry_count} of ${row.retry_limit} times`);
    }
    const ref = row.source_ref;
    let action: RetryAction;
    let source: SourceRow | undefined;
    let interfaceType: InterfaceType = row.interface_type;
    if (ref?.kind === 'wal-dead-letter') action = 'requeue';
    else if (ref?.kind === 'source') {
      action = 'source';
      interfaceType = ref.interfaceType ?? row.interface_type;
      source = await getSource(trx, tenantId, interfaceType);
      if (!source) {
        throw new AppError('SOURCE_NOT_CONFIGURED', `no source is configured for ${interfaceType}`, {
          interfaceType,
        });
      }
      // Refused before anything is recorded: an open circuit (or another call's trial of it) means
      // nothing would be attempted. Admitted, the retry holds its leave (the trial, if it is one)
      // until its calls are done, so no other call takes the trial from it meanwhile.
      try {
        held.permit ??= breakers.admit(tenantId, interfaceType);
      } catch (error) {
        if (!(error instanceof SourceUnavailableError)) throw error;
        throw new AppError(
          'SOURCE_UNAVAILABLE',
          error.busy
            ? `the ${interfaceType} source has too many calls under way: try again shortly`
            : `the ${interfaceType} source is failing: its circuit is open`,
          {
            retryAfterSeconds: Math.ceil(error.retryAfterMs / 1000),
          },
        );
      }
    } else if (ref?.kind === 'order') {
      if (!options.payment) throw new AppError('NOT_RETRYABLE', ORDER_NEEDS_PAYMENT);
      action = 'checkout';
    } else throw new AppError('NOT_RETRYABLE', 'this exception has no source a retry could re-submit to');

    // A checkout's attempt names its order from the start: a reader sees which one it waits for.
    const old = ref?.kind === 'order' ? await failedOrder(deps, trx, tenantId, ref.orderId) : undefined;
    const made = old ? { id: uuidv7(), number: options.number } : undefined;
    const attempt = await insertAttempt(trx, {
      tenantId,
      exceptionId: row.id,
      action,
      requestedBy: actor,
      outcome: made ? `checkout of ${describeOrder(made)} running` : null,
    });
    const exception = await markRetrying(trx, row.id);
    await recordAudit(trx, [
      {
        tenantId,
        exceptionId: row.id,
        action: 'retry.requested',
        actor,
        details: {
          attempt: attempt.attempt,
          action,
          ...(made ? { order: { id: made.id, number: made.number, retryOf: old!.id } } : {}),
        },
      },
    ]);
    if (action === 'source') return { kind: 'source', attempt, exception, source: source!, interfaceType };
    if (old && made) {
      const held = await startRetryCheckout(deps, trx, tenantId, {
        old,
        orderId: made.id,
        number: made.number,
        attemptId: attempt.id,
        actor,
        payment: options.payment!,
        meta: options.meta ?? {},
      });
      return { kind: 'checkout', attempt, exception, held };
    }
    const dead = ref as { namespace: string; messageId: string };
    // In this transaction: the requeue commits with its attempt, or neither does.
    if (await deps.wal.deadLetters.requeue(trx, tenantId, dead.namespace, dead.messageId)) {
      return { kind: 'requeued', attempt, exception };
    }
    const outcome = `message ${dead.messageId} is no longer a dead letter of ${dead.namespace} (requeued, discarded or purged meanwhile)`;
    const finished = await finishRetry(deps, trx, tenantId, attempt.id, { status: 'failed', outcome }, actor);
    return { kind: 'finished', finished: finished! };
  }

  /** Outside any transaction: POSTs the payload, signed, to the source's retry endpoint through its breaker. */
  async function resubmit(tenantId: string, begun: Extract<Begun, { kind: 'source' }>, permit: SourcePermit) {
    const { attempt, exception: row, interfaceType } = begun;
    try {
      const target = await targetOf(box, begun.source);
      if (!target.signingSecret)
        return { status: 'failed' as const, outcome: 'the source has no signing secret: PUT it again' };
      const { payload } = await loadPayload(tenantId, row, permit);
      const body = JSON.stringify({
        transactionId: row.transaction_id,
        externalId: row.external_id,
        interfaceType,
        payload,
      });
      const answer = await breakers.run(
        tenantId,
        interfaceType,
        () => {
          // Each HTTP attempt is signed afresh; webhook-id (the attempt's id) stays, so the source can dedupe.
          const timestamp = Math.floor(Date.now() / 1000);
          return client.postRetry(target, body, {
            'webhook-id': attempt.id,
            'webhook-timestamp': String(timestamp),
            'webhook-signature': signWebhook(target.signingSecret, attempt.id, timestamp, body),
          });
        },
        permit,
      );
      return {
        status: 'succeeded' as const,
        outcome: `HTTP ${answer.status}${answer.text ? `: ${answer.text}` : ''}`,
      };
    } catch (error) {
      return { status: 'failed' as const, outcome: describeFailure(error) };
    }
  }

  /** One retry of the tenant's exception by `actor`: the attempt and the exception after it. */
  async function retryOnce(
    tenantId: string,
    transactionId: string,
    actor: string,
    options: RetryOptions = {},
  ): Promise<RetryResult> {
    // A requeue that ended since (delivered or dead again) no longer counts as in progress.
    await settler.settle(tenantId, { transactionId });
    checkProvider(options.payment);
    const number = await orders.number(tenantId, transactionId, options.payment);
    // The source's leave, once begin took it: given back whatever happens after.
    const held: { permit?: SourcePermit } = {};
    let begun: Begun;
    try {
      begun = await withTenant(db, tenantId, (trx) =>
        begin(trx as ExceptionsTrx, tenantId, transactionId, actor, { ...options, number }, held),
      );
    } catch (error) {
      if (held.permit) breakers.release(held.permit);
      throw error;
    }
    if (begun.kind === 'finished') {
      await invalidatePayload(tenantId, transactionId);
      return begun.finished;
    }
    if (begun.kind === 'requeued') {
      settler.watch(tenantId, begun.attempt.id);
      return begun;
    }
    if (begun.kind === 'checkout') return orders.run(tenantId, begun, actor);
    let result: Awaited<ReturnType<typeof resubmit>>;
    try {
      result = await resubmit(tenantId, begun, held.permit!);
    } finally {
      breakers.release(held.permit!);
    }
    const finished = await withTenant(db, tenantId, (trx) =>
      finishRetry(deps, trx as ExceptionsTrx, tenantId, begun.attempt.id, result, actor),
    );
    await invalidatePayload(tenantId, transactionId);
    // Settled meanwhile (only by the abandonment rule, after minutes): answer the attempt as it began.
    return finished ?? begun;
  }

  const outcomeOf = ({ attempt, exception }: RetryResult): RetryOutcome => ({
    attempt: attempt.attempt,
    action: attempt.action,
    status: attempt.status,
    outcome: attempt.outcome,
    exceptionStatus: exception.status,
  });

  return {
    retry: async (tenantId, transactionId, actor) =>
      outcomeOf(await retryOnce(tenantId, transactionId, actor)),
    invalidatePayload,
    loadPayload,
    routes: async (app) => {
      await app.register(retryRoutes({ deps, retryOnce, settle: settler.settle }));
      await app.register(sourceRoutes({ deps, box, guard, breakers }));
    },
    close: () => settler.close(),
  };
}

const paymentNotTaken = () =>
  new AppError('VALIDATION_FAILED', 'payment is taken only by the retry of a Mercato order', {
    errors: [{ in: 'body', pointer: '/payment', message: 'is taken only by the retry of a Mercato order' }],
  });
