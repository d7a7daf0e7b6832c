import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { isoTime, withTenant } from '../../platform/db/index.ts';
import { AppError, principalOf, SECURED } from '../../platform/http/index.ts';
import type { WalDeps } from '../deps.ts';
import { canWriteNamespace } from '../namespaces/index.ts';

const iso = (value: Date | string | null) => (value === null ? null : isoTime(value));
const Time = Type.String({ format: 'date-time' });
const NullableTime = Type.Union([Time, Type.Null()]);

const Attempt = Type.Object({
  attempt: Type.Integer(),
  target: Type.String(),
  startedAt: Time,
  finishedAt: Time,
  outcome: Type.Union([
    Type.Literal('delivered'),
    Type.Literal('failed'),
    Type.Literal('dead'),
    Type.Literal('skipped'),
  ]),
  statusCode: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()]),
});

const MessageView = Type.Object({
  id: Type.String({ description: 'Internal id (UUIDv7); orders delivery' }),
  messageId: Type.String(),
  namespace: Type.String(),
  key: Type.Union([Type.String(), Type.Null()]),
  state: Type.Union([
    Type.Literal('scheduled'),
    Type.Literal('pending'),
    Type.Literal('delivering'),
    Type.Literal('delivered'),
    Type.Literal('retrying'),
    Type.Literal('dead'),
  ]),
  backend: Type.String(),
  payload: Type.Unknown(),
  headers: Type.Record(Type.String(), Type.String()),
  attempts: Type.Integer({ description: 'Delivery attempts so far' }),
  maxAttempts: Type.Integer(),
  dueAt: Time,
  createdAt: Time,
  deliveredAt: NullableTime,
  deadAt: NullableTime,
  lastError: Type.Union([Type.String(), Type.Null()]),
  targetsDone: Type.Array(Type.String()),
  history: Type.Array(Attempt, { description: 'Every delivery attempt to every target, oldest first' }),
});

const base = { tags: ['wal'], security: SECURED as Record<string, string[]>[] };

/**
 * GET /wal/messages/{messageId}: a message, its state and every attempt. messageId is unique per
 * namespace: `?namespace=` picks one; without it, an id written to several namespaces the caller
 * may read is a 409 CONFLICT listing them. Readers: whoever may write the namespace (admins, API
 * keys with wal:write and the namespace). Another tenant's message is a 404 (row-level security).
 */
export function messageRoutes(deps: WalDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/wal/messages/:messageId',
      {
        schema: {
          ...base,
          summary: 'A WAL message with its state and delivery attempts',
          params: Type.Object({ messageId: Type.String({ minLength: 1, maxLength: 200 }) }),
          querystring: Type.Object(
            { namespace: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' })) },
            { additionalProperties: false },
          ),
          response: { 200: MessageView },
        },
      },
      async (request) => {
        const principal = principalOf(request);
        const { messageId } = request.params;
        const { namespace } = request.query;
        return withTenant(deps.db, principal.tenantId, async (trx) => {
          let query = trx.selectFrom('wal.messages').selectAll().where('message_id', '=', messageId);
          if (namespace !== undefined) query = query.where('namespace', '=', namespace);
          const rows = await query.orderBy('namespace').execute();
          if (rows.length === 0) throw new AppError('NOT_FOUND', `message ${messageId} not found`);
          const readable = rows.filter((r) => canWriteNamespace(principal, r.namespace));
          if (readable.length === 0) {
            throw new AppError('FORBIDDEN', `this credential may not read namespace ${rows[0]!.namespace}`);
          }
          if (readable.length > 1) {
            const namespaces = readable.map((r) => r.namespace);
            throw new AppError(
              'CONFLICT',
              `message ${messageId} exists in ${namespaces.length} namespaces; choose one with ?namespace=`,
              { namespaces },
            );
          }
          const row = readable[0]!;
          const attempts = await trx
            .selectFrom('wal.attempts')
            .selectAll()
            .where('message_pk', '=', row.id)
            .orderBy('started_at')
            .orderBy('attempt')
            .orderBy('target')
            .execute();
          return {
            id: row.id,
            messageId: row.message_id,
            namespace: row.namespace,
            key: row.ordering_key,
            state: row.state,
            backend: row.backend,
            payload: row.payload,
            headers: row.headers,
            attempts: row.attempts,
            maxAttempts: row.max_attempts,
            dueAt: iso(row.due_at)!,
            createdAt: iso(row.created_at)!,
            deliveredAt: iso(row.delivered_at),
            deadAt: iso(row.dead_at),
            lastError: row.last_error,
            targetsDone: row.targets_done,
            history: attempts.map((a) => ({
              attempt: a.attempt,
              target: a.target,
              startedAt: iso(a.started_at)!,
              finishedAt: iso(a.finished_at)!,
              outcome: a.outcome,
              statusCode: a.status_code,
              error: a.error,
            })),
          };
        });
      },
    );
  };
}
