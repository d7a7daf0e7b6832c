import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { isoTime, withTenant } from '../../platform/db/index.ts';
import { AppError, type Principal, principalOf, SECURED } from '../../platform/http/index.ts';
import { backendUnavailable, type StreamMessageView } from '../backends/stream/contract.ts';
import type { WalDeps } from '../deps.ts';
import { backendsHolding, canWriteNamespace } from '../namespaces/index.ts';

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
 * The one message the principal may read among those found under messageId (one per namespace):
 * 404 when it may read none of their namespaces, exactly as when there is no such message (a 403
 * would tell the caller the id exists in a namespace it may not read), 409 CONFLICT when several,
 * listing them.
 */
function readableOne<T>(
  principal: Principal,
  messageId: string,
  found: T[],
  namespaceOf: (item: T) => string,
): T {
  const readable = found.filter((item) => canWriteNamespace(principal, namespaceOf(item)));
  if (readable.length === 0) throw new AppError('NOT_FOUND', `message ${messageId} not found`);
  if (readable.length > 1) {
    const namespaces = readable.map(namespaceOf);
    throw new AppError(
      'CONFLICT',
      `message ${messageId} exists in ${namespaces.length} namespaces; choose one with ?namespace=`,
      { namespaces },
    );
  }
  return readable[0]!;
}

/**
 * A message that is not in wal.messages may be in a stream backend: asks each backend of the
 * tenant's namespaces (only `namespace` when given) that this process has. Nothing found is a
 * 404, or a 503 BACKEND_UNAVAILABLE when a backend that might hold it did not answer.
 */
async function findInStreams(
  deps: WalDeps,
  principal: Principal,
  messageId: string,
  namespace: string | undefined,
): Promise<StreamMessageView[]> {
  if (deps.streams.size === 0) throw new AppError('NOT_FOUND', `message ${messageId} not found`);
  const { tenantId } = principal;
  const candidates = (
    namespace === undefined
      ? (await deps.namespaces.all()).filter((n) => n.tenantId === tenantId)
      : [await deps.namespaces.get(tenantId, namespace)].filter((n) => n !== undefined)
  ).filter((n) => canWriteNamespace(principal, n.name));
  const lookups = candidates.flatMap((n) =>
    backendsHolding(n).flatMap((backend) => {
      const stream = backend === 'postgres' ? undefined : deps.streams.get(backend);
      return stream ? [stream.find(tenantId, n.name, messageId)] : [];
    }),
  );
  const settled = await Promise.allSettled(lookups);
  const found = settled.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
  if (found.length > 0) return found;
  // Not found anywhere we could look: with a backend down, "not found" would be a guess.
  const down = settled.find((r) => r.status === 'rejected');
  if (down) {
    throw backendUnavailable(
      `message ${messageId} may be on a backend that cannot be reached now; retry shortly`,
      {},
      down.reason,
    );
  }
  throw new AppError('NOT_FOUND', `message ${messageId} not found`);
}

function streamView(view: StreamMessageView) {
  const m = view.message;
  const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: m.id,
    messageId: m.messageId,
    namespace: m.namespace,
    key: m.key,
    state: view.state,
    backend: view.backend,
    payload: JSON.parse(m.payload) as unknown,
    headers: JSON.parse(m.headers) as Record<string, string>,
    attempts: m.attempts,
    maxAttempts: m.maxAttempts,
    dueAt: time(m.dueAt)!,
    createdAt: time(m.createdAt)!,
    deliveredAt: time(view.deliveredAt),
    deadAt: time(view.deadAt),
    lastError: view.lastError,
    targetsDone: m.targetsDone,
    history: view.history.map((a) => ({
      attempt: a.attempt,
      target: a.target,
      startedAt: a.startedAt.toISOString(),
      finishedAt: a.finishedAt.toISOString(),
      outcome: a.outcome,
      statusCode: a.statusCode ?? null,
      error: a.error ?? null,
    })),
  };
}

/**
 * GET /wal/messages/{messageId}: a message, its state and every attempt, from wal.messages (the
 * postgres backend, rows waiting for the relay, every dead letter) or else a stream backend. messageId is unique per
 * namespace: `?namespace=` picks one; without it, an id written to several namespaces the caller
 * may read is a 409 CONFLICT listing them. Readers: whoever may write the namespace (admins, API
 * keys with wal:write and the namespace). Another tenant's message (row-level security) and a
 * message in a namespace the caller may not read are a 404, like a missing one.
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
        const stored = await withTenant(deps.db, principal.tenantId, async (trx) => {
          let query = trx.selectFrom('wal.messages').selectAll().where('message_id', '=', messageId);
          if (namespace !== undefined) query = query.where('namespace', '=', namespace);
          const rows = await query.orderBy('namespace').execute();
          if (rows.length === 0) return undefined;
          const row = readableOne(principal, messageId, rows, (r) => r.namespace);
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
            // A message parked behind its key (lease-ctes.ts) fell due at parked_due_at.
            dueAt: iso(row.parked_due_at ?? row.due_at)!,
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
        if (stored) return stored;
        // Outside the transaction: on PGlite (one connection) a namespace read inside it would wait forever.
        const found = await findInStreams(deps, principal, messageId, namespace);
        return streamView(readableOne(principal, messageId, found, (v) => v.message.namespace));
      },
    );
  };
}
