import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import {
  AppError,
  actorOf,
  eventMetaOf,
  Nullable,
  noBodyIsEmpty,
  principalOf,
  requireOperator,
  SECURED,
} from '../platform/http/index.ts';
import type { ExceptionsDeps } from './deps.ts';
import { ExceptionSchema, toView } from './exception-view.ts';
import { RetryPaymentSchema } from './order-retry.ts';
import type { RetryOptions, RetryResult } from './retry.ts';
import { attemptView, findException, listAttempts } from './retry-store.ts';
import type { ExceptionsTrx } from './tables.ts';

const base = { tags: ['exceptions'], security: SECURED as Record<string, string[]>[] };

const Params = Type.Object({ transactionId: Type.String({ minLength: 1, maxLength: 200 }) });

/** 000's RetryAttempt. */
export const AttemptSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  attempt: Type.Integer({ minimum: 1 }),
  action: Type.Union([Type.Literal('requeue'), Type.Literal('source'), Type.Literal('checkout')], {
    description: 'requeue (a WAL dead letter), source (the interface’s retry endpoint), checkout',
  }),
  status: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
  outcome: Nullable(Type.String()),
  requestedBy: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
});

const RetryBody = Type.Object(
  { payment: Type.Optional(RetryPaymentSchema) },
  { additionalProperties: false },
);

const RetryAnswer = Type.Object({ attempt: AttemptSchema, exception: ExceptionSchema });
const AttemptList = Type.Object({ items: Type.Array(AttemptSchema) });

export type RetryRouteParts = {
  deps: ExceptionsDeps;
  retryOnce(
    tenantId: string,
    transactionId: string,
    actor: string,
    options?: RetryOptions,
  ): Promise<RetryResult>;
  settle(tenantId: string, which: { transactionId: string }): Promise<unknown>;
};

/** POST /exceptions/{transactionId}/retry and GET /exceptions/{transactionId}/retries (operators). */
export function retryRoutes({ deps, retryOnce, settle }: RetryRouteParts) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/exceptions/:transactionId/retry',
      {
        preValidation: [requireOperator('exceptions:write'), noBodyIsEmpty],
        schema: {
          ...base,
          summary:
            'Retry an exception where it failed: a dead letter is requeued (202 until it is delivered or dead again), ' +
            'an interface’s payload is POSTed, signed, to its source (201 with the outcome), a failed Mercato order ' +
            'runs its checkout again as a new order paid with the `payment` given (201 completed or failed, 202 while ' +
            'its payment is still under way). 409 NOT_RETRYABLE (an order without `payment`), ' +
            'RETRY_LIMIT_REACHED, RETRY_IN_PROGRESS, SOURCE_NOT_CONFIGURED or ILLEGAL_TRANSITION (resolved, closed); ' +
            '503 SOURCE_UNAVAILABLE with Retry-After while the source’s circuit is open (nothing recorded). ' +
            'Idempotency-Key honoured.',
          params: Params,
          body: RetryBody,
          response: { 201: RetryAnswer, 202: RetryAnswer },
        },
      },
      async (request, reply) => {
        const { tenantId, actor } = actorOf(request);
        const { transactionId } = request.params;
        const { payment } = request.body ?? {};
        const result = await retryOnce(tenantId, transactionId, actor, {
          payment,
          meta: eventMetaOf(request),
        });
        reply
          .code(result.attempt.status === 'pending' ? 202 : 201)
          .header('location', `/api/v1/exceptions/${encodeURIComponent(transactionId)}/retries`);
        return { attempt: attemptView(result.attempt), exception: toView(result.exception) };
      },
    );

    app.get(
      '/exceptions/:transactionId/retries',
      {
        preValidation: requireOperator('exceptions:read'),
        schema: {
          ...base,
          summary:
            'Every retry attempt of an exception, first first, with its outcome (pending requeues settled first)',
          params: Params,
          response: { 200: AttemptList },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        const { transactionId } = request.params;
        await settle(tenantId, { transactionId });
        const attempts = await withTenant(deps.db, tenantId, async (trx) => {
          const row = await findException(trx as ExceptionsTrx, tenantId, transactionId);
          if (!row) throw new AppError('NOT_FOUND', `exception ${transactionId} not found`);
          return listAttempts(trx as ExceptionsTrx, row.id);
        });
        return { items: attempts.map(attemptView) };
      },
    );
  };
}
