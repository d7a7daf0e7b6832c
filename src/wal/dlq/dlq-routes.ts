import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Transaction } from 'kysely';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import {
  AppError,
  cursorId,
  cursorText,
  encodeCursor,
  invalidCursor,
  isStorableTimestamp,
  noBodyIsEmpty,
  principalOf,
  requireUser,
  SECURED,
  userOf,
} from '../../platform/http/index.ts';
import { actorOf, recordAudit } from '../audit/index.ts';
import type { WalDeps } from '../deps.ts';
import type { WalTables } from '../tables.ts';
import {
  type DeadLetterCursor,
  type DeadLetterFilter,
  discardDeadLetter,
  getDeadLetter,
  listDeadLetters,
  namespaceExists,
  requeueDeadLetters,
} from './dlq-store.ts';

const NamespaceParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });
const MessageParams = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 63 }),
  messageId: Type.String({ minLength: 1, maxLength: 200 }),
});

const filterFields = {
  error: Type.Optional(
    Type.String({ minLength: 1, maxLength: 500, description: 'Substring of the final error' }),
  ),
  target: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'A target that failed' })),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Dead at or after' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Dead before' })),
};

const ListQuery = Type.Object(
  {
    ...filterFields,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 300, description: 'nextCursor of the last page' }),
    ),
  },
  { additionalProperties: false },
);

const RequeueBody = Type.Object(filterFields, { additionalProperties: false });

const deadLetterFields = {
  deliveryId: Type.String({ format: 'uuid' }),
  messageId: Type.String(),
  key: Type.Union([Type.String(), Type.Null()]),
  payload: Type.Unknown(),
  headers: Type.Record(Type.String(), Type.String()),
  attempts: Type.Integer(),
  lastError: Type.Union([Type.String(), Type.Null()]),
  targetsDone: Type.Array(Type.String()),
  deadAt: Type.String({ format: 'date-time' }),
  createdAt: Type.String({ format: 'date-time' }),
};
const DeadLetterView = Type.Object(deadLetterFields);

const AttemptView = Type.Object({
  attempt: Type.Integer(),
  target: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.String({ format: 'date-time' }),
  outcome: Type.String(),
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

const DeadLetterDetail = Type.Object({ ...deadLetterFields, history: Type.Array(AttemptView) });
const Requeued = Type.Object({ requeued: Type.Integer() });

const base = { tags: ['wal'], security: SECURED };
const admin = { preValidation: requireUser('admin') };

const encodeDeadLetterCursor = (c: DeadLetterCursor) => encodeCursor(JSON.stringify([c.deadAt, c.id]));

/**
 * The (deadAt, id) a cursor holds, or 400 INVALID_CURSOR saying what is wrong: not base64url, not
 * JSON, not a time PostgreSQL stores (year 0, `+275760-…`), not an id (each a 500 once).
 */
function decodeDeadLetterCursor(raw: string): DeadLetterCursor {
  let value: unknown;
  try {
    value = JSON.parse(cursorText(raw));
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw invalidCursor('not JSON');
  }
  if (!Array.isArray(value) || value.length !== 2) throw invalidCursor('not a [time, id] pair');
  const [deadAt, id] = value as unknown[];
  if (typeof deadAt !== 'string' || !isStorableTimestamp(deadAt)) throw invalidCursor('not a time');
  return { deadAt, id: cursorId(id) };
}

function filterOf(input: { error?: string; target?: string; from?: string; to?: string }): DeadLetterFilter {
  const filter: DeadLetterFilter = {};
  if (input.error !== undefined) filter.error = input.error;
  if (input.target !== undefined) filter.target = input.target;
  if (input.from !== undefined) filter.from = input.from;
  if (input.to !== undefined) filter.to = input.to;
  return filter;
}

/** Runs fn for the tenant's namespace; 404 when the tenant has no such namespace. */
async function inNamespace<T>(
  deps: Pick<WalDeps, 'db'>,
  tenantId: string,
  name: string,
  fn: (trx: Transaction<WalTables>) => Promise<T>,
): Promise<T> {
  return withTenant(deps.db, tenantId, async (trx) => {
    if (!(await namespaceExists(trx, tenantId, name)))
      throw new AppError('NOT_FOUND', `namespace ${name} not found`);
    return fn(trx);
  });
}

const notFound = (name: string, messageId: string) =>
  new AppError('NOT_FOUND', `no dead letter ${messageId} in namespace ${name}`);

/** /wal/namespaces/{name}/dlq: browse, requeue and discard dead letters (tenant admins). */
export function dlqRoutes(deps: Pick<WalDeps, 'db'>) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/wal/namespaces/:name/dlq',
      {
        ...admin,
        schema: {
          ...base,
          summary: 'Dead letters of a namespace, newest first',
          params: NamespaceParams,
          querystring: ListQuery,
          response: {
            200: Type.Object({
              items: Type.Array(DeadLetterView),
              nextCursor: Type.Union([Type.String(), Type.Null()]),
            }),
          },
        },
      },
      async (request) => {
        const { tenantId } = userOf(request);
        const { name } = request.params;
        const limit = request.query.limit ?? 20;
        const after =
          request.query.cursor === undefined ? undefined : decodeDeadLetterCursor(request.query.cursor);
        const rows = await inNamespace(deps, tenantId, name, (trx) =>
          listDeadLetters(trx, tenantId, name, filterOf(request.query), limit + 1, after),
        );
        const items = rows.slice(0, limit);
        const last = items.at(-1);
        const nextCursor =
          rows.length > limit && last
            ? encodeDeadLetterCursor({ deadAt: last.deadAt, id: last.deliveryId })
            : null;
        return { items, nextCursor };
      },
    );

    app.get(
      '/wal/namespaces/:name/dlq/:messageId',
      {
        ...admin,
        schema: {
          ...base,
          summary: 'One dead letter: the message, every attempt and the final error',
          params: MessageParams,
          response: { 200: DeadLetterDetail },
        },
      },
      async (request) => {
        const { tenantId } = userOf(request);
        const { name, messageId } = request.params;
        const found = await inNamespace(deps, tenantId, name, (trx) =>
          getDeadLetter(trx, tenantId, name, messageId),
        );
        if (!found) throw notFound(name, messageId);
        return found;
      },
    );

    app.post(
      '/wal/namespaces/:name/dlq/:messageId/requeue',
      {
        ...admin,
        schema: {
          ...base,
          summary: 'Put one dead letter back in the queue',
          params: MessageParams,
          response: { 202: Requeued },
        },
      },
      async (request, reply) => {
        const { tenantId } = userOf(request);
        const { name, messageId } = request.params;
        const actor = actorOf(principalOf(request));
        const requeued = await inNamespace(deps, tenantId, name, async (trx) => {
          const n = await requeueDeadLetters(trx, tenantId, name, { messageId });
          if (n === 0) throw notFound(name, messageId);
          await recordAudit(trx, {
            tenantId,
            actor,
            action: 'dead_letter.requeued',
            subject: `namespace:${name}`,
            details: { messageId },
          });
          return n;
        });
        reply.code(202);
        return { requeued };
      },
    );

    app.post(
      '/wal/namespaces/:name/dlq/requeue',
      {
        // No body (no filter) requeues every dead letter of the namespace.
        preValidation: [admin.preValidation, noBodyIsEmpty],
        schema: {
          ...base,
          summary: 'Put every dead letter matching a filter back in the queue',
          params: NamespaceParams,
          body: RequeueBody,
          response: { 202: Requeued },
        },
      },
      async (request, reply) => {
        const { tenantId } = userOf(request);
        const { name } = request.params;
        const actor = actorOf(principalOf(request));
        const filter = filterOf(request.body);
        const requeued = await inNamespace(deps, tenantId, name, async (trx) => {
          const n = await requeueDeadLetters(trx, tenantId, name, { filter });
          if (n > 0) {
            await recordAudit(trx, {
              tenantId,
              actor,
              action: 'dead_letter.requeued',
              subject: `namespace:${name}`,
              details: { filter, count: n },
            });
          }
          return n;
        });
        reply.code(202);
        return { requeued };
      },
    );

    app.delete(
      '/wal/namespaces/:name/dlq/:messageId',
      {
        ...admin,
        schema: { ...base, summary: 'Discard one dead letter (audited)', params: MessageParams },
      },
      async (request, reply) => {
        const { tenantId } = userOf(request);
        const { name, messageId } = request.params;
        const actor = actorOf(principalOf(request));
        await inNamespace(deps, tenantId, name, async (trx) => {
          const discarded = await discardDeadLetter(trx, tenantId, name, messageId);
          if (!discarded) throw notFound(name, messageId);
          await recordAudit(trx, {
            tenantId,
            actor,
            action: 'dead_letter.discarded',
            subject: `namespace:${name}`,
            details: { messageId, ...discarded },
          });
        });
        reply.code(204);
      },
    );
  };
}
