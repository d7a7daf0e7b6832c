import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import { AppError, principalOf, requireOperator } from '../platform/http/index.ts';
import type { ExceptionsDeps, PayloadAnswer } from './deps.ts';
import { findExceptionDetail, listExceptions, readListCursor, type Sort } from './exception-queries.ts';
import {
  DetailSchema,
  ExceptionPage,
  ListQuery,
  SECURITY,
  SearchPageSchema,
  SearchQuery,
  SummaryQuery,
  SummarySchema,
  TransactionParams,
} from './exception-schemas.ts';
import { toView } from './exception-view.ts';
import { readFilter } from './filters.ts';
import { readSearchCursor, searchExceptions } from './search.ts';
import { summarize, summaryRange } from './summary.ts';

const base = { tags: ['exceptions'], security: SECURITY };
const read = requireOperator('exceptions:read');
const DEFAULT_LIMIT = 20;
const TWO_DAYS_MS = 2 * 86_400_000;

// Exceptions carry customers' ids and orders' payloads: no shared cache may keep an answer.
const privately = (reply: FastifyReply) => reply.header('cache-control', 'private, no-store');

/** GET /exceptions, /exceptions/search, /exceptions/summary and /exceptions/{transactionId}. */
export function queryRoutes(deps: ExceptionsDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/exceptions',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'listExceptions',
          summary:
            "The tenant's exceptions, filtered and sorted (Default: last seen, newest first), by cursor pages",
          querystring: ListQuery,
          response: { 200: ExceptionPage },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const { limit, cursor, sort: given, ...rest } = request.query;
        const sort = (given ?? '-lastSeen') as Sort;
        const filter = readFilter(rest);
        const after = cursor === undefined ? undefined : readListCursor(cursor, sort);
        const page = await withTenant(deps.db, tenantId, (trx) =>
          listExceptions(trx, tenantId, filter, { limit: limit ?? DEFAULT_LIMIT, sort, after }),
        );
        privately(reply);
        return page;
      },
    );

    app.get(
      '/exceptions/search',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'searchExceptions',
          summary:
            'Full-text search over reasons, ids, customers, locations and payload text, newest first or ranked; with the list filters',
          querystring: SearchQuery,
          response: { 200: SearchPageSchema },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const { q, limit, cursor, sort: given, ...rest } = request.query;
        const sort = given ?? 'newest';
        const filter = readFilter(rest);
        const after = cursor === undefined ? undefined : readSearchCursor(cursor, sort);
        const page = await withTenant(deps.db, tenantId, (trx) =>
          searchExceptions(trx, tenantId, q, filter, { limit: limit ?? DEFAULT_LIMIT, after, sort }),
        );
        privately(reply);
        return page;
      },
    );

    app.get(
      '/exceptions/summary',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'summarizeExceptions',
          summary:
            'Counts by interface type, severity, status, category and time bucket, the oldest open exception and the mean time to resolve, over from/to (Default: the last 24 hours; at most 90 days)',
          querystring: SummaryQuery,
          response: { 200: SummarySchema },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const { bucket, ...rest } = request.query;
        const filter = readFilter(rest);
        const range = summaryRange(filter);
        const size = bucket ?? (range.to.getTime() - range.from.getTime() <= TWO_DAYS_MS ? 'hour' : 'day');
        const summary = await withTenant(deps.db, tenantId, (trx) =>
          summarize(trx, tenantId, filter, size, range),
        );
        privately(reply);
        return summary;
      },
    );

    app.get(
      '/exceptions/:transactionId',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'getException',
          summary:
            'One exception by transaction id (URL-encoded), with its payload from its source, its retries and its audit',
          params: TransactionParams,
          response: { 200: DetailSchema },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const { transactionId } = request.params;
        const found = await withTenant(deps.db, tenantId, (trx) =>
          findExceptionDetail(trx, tenantId, transactionId),
        );
        if (!found) throw new AppError('NOT_FOUND', 'exception not found');
        // Outside the transaction: the source may take its timeout, and PGlite has one connection.
        const payload = await loadPayload(deps, tenantId, found.row);
        privately(reply);
        return {
          ...toView(found.row),
          payload: payload.payload ?? null,
          payloadFrom: payload.from,
          payloadError: payload.error ?? null,
          retries: found.retries,
          audit: found.audit,
        };
      },
    );
  };
}

/** The payload through the retry part's hook; the detail answers even when that throws. */
async function loadPayload(
  deps: ExceptionsDeps,
  tenantId: string,
  row: Parameters<ExceptionsDeps['hooks']['loadPayload']>[1],
): Promise<PayloadAnswer> {
  try {
    return await deps.hooks.loadPayload(tenantId, row);
  } catch (err) {
    deps.ctx.logger.warn({ err, tenantId }, 'loading an exception payload failed');
    return { payload: null, from: 'none', error: 'the payload could not be loaded' };
  }
}
