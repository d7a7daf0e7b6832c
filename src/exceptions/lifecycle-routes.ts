import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError, actorOf, eventMetaOf, noBodyIsEmpty, requireOperator } from '../platform/http/index.ts';
import { bulkChange, bulkRetry } from './bulk.ts';
import type { ExceptionsDeps } from './deps.ts';
import {
  AcknowledgeBody,
  BulkBody,
  type BulkBodyType,
  BulkResultSchema,
  CloseBody,
  ResolveBody,
  SECURITY,
  TransactionParams,
} from './exception-schemas.ts';
import { ExceptionSchema } from './exception-view.ts';
import { type ExceptionFilter, filterSql, isEmptyFilter, readFilter } from './filters.ts';
import { type Change, changeStatus } from './lifecycle.ts';

const base = { tags: ['exceptions'], security: SECURITY };
const write = requireOperator('exceptions:write');

const badBody = (pointer: string, message: string) =>
  new AppError('VALIDATION_FAILED', `${pointer.slice(1)} ${message}`, {
    errors: [{ in: 'body', pointer, message }],
  });

/** The bulk body's filter, or 400: an empty one needs `all: true`, and each action its own fields. */
function bulkFilter(body: BulkBodyType): ExceptionFilter {
  const filter = readFilter(body.filter ?? {}, { in: 'body', prefix: '/filter' });
  if (isEmptyFilter(filter) && body.all !== true) {
    throw badBody('/filter', 'must name at least one filter, or send all: true to act on every exception');
  }
  if (body.action === 'resolve' && body.resolution === undefined)
    throw badBody('/resolution', 'is required to resolve');
  if (body.action !== 'resolve' && body.resolution !== undefined)
    throw badBody('/resolution', 'is for resolve only');
  if (body.action === 'retry' && body.note !== undefined) throw badBody('/note', 'is not taken by retry');
  return filter;
}

/** PUT /exceptions/{transactionId}/acknowledge|resolve|close and POST /exceptions/bulk. */
export function lifecycleRoutes(deps: ExceptionsDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    const changeRoute = (
      change: Change,
      body: typeof AcknowledgeBody | typeof ResolveBody,
      summary: string,
    ) =>
      app.put(
        `/exceptions/:transactionId/${change}`,
        {
          preValidation: [write, noBodyIsEmpty],
          schema: {
            ...base,
            operationId: `${change}Exception`,
            summary,
            params: TransactionParams,
            body,
            response: { 200: ExceptionSchema },
          },
        },
        async (request, reply) => {
          const { tenantId, actor } = actorOf(request);
          const given = request.body as { note?: string; resolution?: string };
          const view = await changeStatus(
            deps,
            tenantId,
            request.params.transactionId,
            actor,
            { change, note: given.note, resolution: given.resolution },
            eventMetaOf(request),
          );
          reply.header('cache-control', 'private, no-store');
          return view;
        },
      );

    changeRoute(
      'acknowledge',
      AcknowledgeBody,
      'Acknowledge an exception (someone is on it): NEW or RETRIED_FAILED; again is a no-op; 409 ILLEGAL_TRANSITION otherwise',
    );
    changeRoute(
      'resolve',
      ResolveBody,
      'Resolve an exception with a resolution and a note, also while a retry waits for its outcome; publishes ExceptionResolved; again is a no-op; 409 ILLEGAL_TRANSITION from CLOSED',
    );
    changeRoute(
      'close',
      CloseBody,
      'Close a resolved (or successfully retried) exception for good; publishes ExceptionResolved',
    );

    app.post(
      '/exceptions/bulk',
      {
        preValidation: write,
        // A bulk retry is not idempotent: with an Idempotency-Key its answer is replayed.
        config: { idempotency: true },
        schema: {
          ...base,
          operationId: 'bulkExceptions',
          summary:
            'Acknowledge or resolve (10,000 at most per call) or retry (100) every exception matching a filter; answers how many',
          body: BulkBody,
          response: { 200: BulkResultSchema },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        const body = request.body;
        const filter = bulkFilter(body);
        const where = filterSql(tenantId, filter);
        if (body.action === 'retry') return bulkRetry(deps, tenantId, actor, where);
        return bulkChange(
          deps,
          tenantId,
          actor,
          where,
          { change: body.action, note: body.note, resolution: body.resolution },
          eventMetaOf(request),
        );
      },
    );
  };
}
