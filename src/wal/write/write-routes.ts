import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, type Principal, principalOf, SECURED } from '../../platform/http/index.ts';
import {
  createGroupCommitter,
  type GroupCommitter,
  type WriteOutcome,
} from '../backends/postgres/group-commit.ts';
import type { WalDeps } from '../deps.ts';
import type {} from '../metrics.ts';
import { canWriteNamespace, type Namespace } from '../namespaces/index.ts';
import { createAppender } from './append.ts';
import { messageRoutes } from './message-routes.ts';
import { type MessageInput, receiptOf, requireEnabled, toRows, validateMessages } from './prepare.ts';

const NAMESPACE = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'The WAL namespace' });
/** A message's own id, as the write routes (and `mercato wal write`) take it. */
export const MESSAGE_ID = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'Your id for the message (visible ASCII); writing it again with the same body is a no-op',
});

/** A message's ordering key, as the write routes (and `mercato wal write`) take it. */
export const MESSAGE_KEY = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'Ordering key: same key, delivered in order',
});

const MessageFields = {
  payload: Type.Unknown({ description: 'Any JSON value; checked against the namespace payload schema' }),
  lifecycle: Type.Optional(
    Type.Object(
      {
        delay: Type.Optional(
          Type.Integer({ minimum: 0, description: 'Deliver after this many milliseconds' }),
        ),
        maxAttempts: Type.Optional(
          Type.Integer({ minimum: 1, maximum: 1000, description: 'Overrides the namespace maximum' }),
        ),
      },
      { additionalProperties: false },
    ),
  ),
  key: Type.Optional(MESSAGE_KEY),
  messageId: Type.Optional(MESSAGE_ID),
  headers: Type.Optional(
    Type.Record(
      Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$" }),
      Type.String({ maxLength: 4096 }),
      {
        maxProperties: 50,
      },
    ),
  ),
};

const WriteBody = Type.Object({ namespace: NAMESPACE, ...MessageFields }, { additionalProperties: false });
const BatchBody = Type.Object(
  {
    namespace: NAMESPACE,
    messages: Type.Array(Type.Object(MessageFields, { additionalProperties: false }), {
      minItems: 1,
      maxItems: 1000,
    }),
  },
  { additionalProperties: false },
);

const Receipt = Type.Object({
  messageId: Type.String(),
  status: Type.Union([Type.Literal('accepted'), Type.Literal('scheduled')]),
  durabilityStatus: Type.Union([Type.Literal('persisted'), Type.Literal('scheduled')]),
  backend: Type.String({
    description: 'The backend that took the write (a fallback when the primary is down)',
  }),
  timestamp: Type.String({ format: 'date-time' }),
  estimatedProcessingTime: Type.String({ format: 'date-time', description: 'When delivery is due' }),
});
const BatchReceipt = Type.Object({ namespace: Type.String(), messages: Type.Array(Receipt) });

// SECURED's inferred type is not FastifySchema's security shape; its value is.
const base = { tags: ['wal'], security: SECURED as Record<string, string[]>[] };
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
// Large enough for the largest payload a namespace may allow (16 MiB); each namespace's own
// maxPayloadBytes then answers a precise 413.
const SINGLE_BODY_LIMIT = 17 * 1024 * 1024;
const BATCH_BODY_LIMIT = 32 * 1024 * 1024;

/** `Idempotency-Key`, an alias of messageId for writes (they answer 202, outside the platform's replay store). */
function idempotencyKeyOf(request: FastifyRequest, maxLength: number): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header) || header.length > maxLength) {
    const message = `must be 1 to ${maxLength} visible ASCII characters`;
    throw new AppError('VALIDATION_FAILED', `Idempotency-Key ${message}`, {
      errors: [{ in: 'headers', pointer: '/idempotency-key', message }],
    });
  }
  return header;
}

/** Whether the principal may write (and so read) at least one namespace, whichever it is. */
const maySomeNamespace = (p: Principal) =>
  p.kind === 'user' ? canWriteNamespace(p, '*') : (p.namespaces ?? []).some((n) => canWriteNamespace(p, n));

const principalKey = (p: Principal) => (p.kind === 'user' ? `user:${p.userId}` : `key:${p.apiKeyId}`);

/**
 * Authorization and the namespace: 403 when the principal may not write it (checked on the name,
 * so a key scoped elsewhere learns nothing about the tenant's namespaces), 404 when it does not
 * exist, 403 for a system namespace (domain events) other than an inbound one, 409 NAMESPACE_DISABLED.
 */
async function writableNamespace(deps: WalDeps, principal: Principal, name: string): Promise<Namespace> {
  if (!canWriteNamespace(principal, name)) {
    throw new AppError('FORBIDDEN', `this credential may not write to namespace ${name}`);
  }
  const namespace = await deps.namespaces.get(principal.tenantId, name);
  if (!namespace) throw new AppError('NOT_FOUND', `namespace ${name} not found`);
  // Domain events come from Mercato's modules only: a forged one would reach their subscribers.
  // An inbound system namespace (interface-exceptions) is written by the tenant's systems.
  if (namespace.system && !deps.inbound?.has(name)) {
    throw new AppError('FORBIDDEN', `${name} is a system namespace: only Mercato's modules publish to it`);
  }
  requireEnabled(namespace);
  return namespace;
}

/**
 * 422 PAYLOAD_SCHEMA_MISMATCH when a message to an inbound system namespace is not one of the
 * events its module takes (every failing field of every message listed).
 */
function checkInbound(
  deps: WalDeps,
  namespace: Namespace,
  messages: MessageInput[],
  pointerOf: (i: number) => string,
): void {
  const check = namespace.system ? deps.inbound?.get(namespace.name) : undefined;
  if (!check) return;
  const errors = messages.flatMap((m, i) =>
    check(m).map((e) => ({ ...e, pointer: `${pointerOf(i)}${e.pointer}` })),
  );
  if (errors.length === 0) return;
  throw new AppError(
    'PAYLOAD_SCHEMA_MISMATCH',
    `${namespace.name} takes only the events its collector knows: ${errors[0]!.pointer} ${errors[0]!.message}`,
    { errors: errors.slice(0, 100) },
  );
}

/**
 * 429 RATE_LIMITED when the principal would exceed namespace.rateLimitPerSecond messages in the
 * current one-second window (shared through ctx.counters: Redis when configured). A batch counts
 * each of its messages.
 */
async function takeRate(
  deps: WalDeps,
  principal: Principal,
  namespace: Namespace,
  count: number,
): Promise<void> {
  const limit = namespace.rateLimitPerSecond;
  if (limit === null) return;
  const key = `wal:write:${namespace.tenantId}:${namespace.name}:${principalKey(principal)}`;
  const refuse = (ttlSeconds: number) => {
    throw new AppError(
      'RATE_LIMITED',
      `namespace ${namespace.name} accepts ${limit} message(s) per second per credential`,
      { retryAfterSeconds: Math.max(1, ttlSeconds) },
    );
  };
  if (count > 1) {
    const seen = await deps.ctx.counters.peek(key);
    if (seen.count + count > limit) refuse(seen.ttlSeconds);
  }
  const counts = await Promise.all(Array.from({ length: count }, () => deps.ctx.counters.increment(key, 1)));
  const last = counts.reduce((a, b) => (b.count > a.count ? b : a));
  if (last.count > limit) refuse(last.ttlSeconds);
}

/** Maps a 409 of the committer onto the request's messageId pointers. */
function pointConflict(
  error: unknown,
  messages: MessageInput[],
  ids: string[],
  pointerOf: (i: number) => string,
) {
  if (error instanceof AppError && error.code === 'IDEMPOTENCY_KEY_REUSED') {
    const conflicting = new Set((error.extras['messageIds'] as string[] | undefined) ?? []);
    const errors = ids.flatMap((id, i) =>
      conflicting.has(id)
        ? [
            {
              in: 'body' as const,
              pointer: `${pointerOf(i)}/messageId`,
              message:
                messages[i]?.messageId === undefined
                  ? 'Idempotency-Key was used with a different body'
                  : 'was written with a different body',
            },
          ]
        : [],
    );
    return new AppError('IDEMPOTENCY_KEY_REUSED', error.message, { ...error.extras, errors });
  }
  return error;
}

const replayed = (outcomes: WriteOutcome[]) => outcomes.length > 0 && outcomes.every((o) => o.replayed);

export type WriteRoutesOptions = {
  /** The group committer writes go through; by default one of its own, closed with the app. */
  committer?: GroupCommitter;
};

/**
 * POST /wal/write, POST /wal/write/batch and GET /wal/messages/{messageId}.
 *
 * Order of checks: 401 (no credential) and 403 (principal may write no namespace) before the body
 * is read, 400 (body: bad JSON values, then shape), 403 (principal may not write the namespace),
 * 404 (namespace), 409 NAMESPACE_DISABLED, 413 PAYLOAD_TOO_LARGE, 422
 * PAYLOAD_SCHEMA_MISMATCH, 422 DELAY_TOO_LONG, 429 RATE_LIMITED, 503 BACKEND_UNAVAILABLE; only
 * then is anything written, and the 202 is sent once the commit carrying the message returned.
 */
export function writeRoutes(deps: WalDeps, options: WriteRoutesOptions = {}) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    // The backends of what an answer acknowledged, for the WAL's write metrics (src/wal/metrics.ts).
    app.decorateRequest('walWritten', undefined);
    const committer = options.committer ?? createGroupCommitter(deps.db);
    if (!options.committer) app.addHook('onClose', async () => committer.close());
    const append = createAppender(committer, deps.streams, { db: deps.db, delivery: deps.inline });
    // A missing credential is a 401, and a credential that may write no namespace at all (a
    // customer, a key without wal:write) a 403, before the body is even read: a 30 MiB batch is
    // refused without being received or parsed (preParsing: after the rate limit, before the body).
    // Which namespace is checked once the body names it.
    app.addHook('preParsing', (request, _reply, payload, done) => {
      try {
        const principal = principalOf(request);
        if (!maySomeNamespace(principal)) {
          throw new AppError(
            'FORBIDDEN',
            'this credential may not use WAL messages (admins, keys with wal:write)',
          );
        }
      } catch (error) {
        return done(error as Error);
      }
      done(null, payload);
    });

    app.post(
      '/wal/write',
      {
        bodyLimit: Math.max(deps.ctx.config.bodyLimit, SINGLE_BODY_LIMIT),
        schema: {
          ...base,
          summary: 'Write a message to a namespace',
          description:
            'Answers 202 once the backend made the message durable. The same messageId (or Idempotency-Key) with the same body answers the first receipt again (Idempotent-Replayed: true); with another body, 409.',
          body: WriteBody,
          response: { 202: Receipt },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const { namespace: name, ...input } = request.body;
        const key = idempotencyKeyOf(request, 200);
        if (key !== undefined && input.messageId !== undefined && key !== input.messageId) {
          throw new AppError('VALIDATION_FAILED', 'Idempotency-Key and messageId differ', {
            errors: [
              { in: 'body', pointer: '/messageId', message: 'must equal Idempotency-Key when both are sent' },
            ],
          });
        }
        const message: MessageInput = { ...input, messageId: input.messageId ?? key };
        const namespace = await writableNamespace(deps, principal, name);
        validateMessages(namespace, [message], () => '');
        checkInbound(deps, namespace, [message], () => '');
        await takeRate(deps, principal, namespace, 1);
        const rows = toRows(principal.tenantId, namespace, namespace.backend, [message]);
        let outcomes: WriteOutcome[];
        try {
          outcomes = await append(namespace, rows);
        } catch (error) {
          throw pointConflict(error, [message], [rows[0]!.message_id], () => '');
        }
        if (replayed(outcomes)) reply.header('idempotent-replayed', 'true');
        reply.code(202);
        const receipt = receiptOf(outcomes[0]!.message);
        request.walWritten = [receipt.backend];
        return receipt;
      },
    );

    app.post(
      '/wal/write/batch',
      {
        bodyLimit: Math.max(deps.ctx.config.bodyLimit, BATCH_BODY_LIMIT),
        schema: {
          ...base,
          summary: 'Write up to 1,000 messages to one namespace, all or nothing',
          description:
            'Every message is validated first (a problem names the failing index, e.g. /messages/3/payload); then all are written in one insert and one commit. With Idempotency-Key K, a message without messageId gets K/<index>.',
          body: BatchBody,
          response: { 202: BatchReceipt },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const { namespace: name, messages: inputs } = request.body;
        const key = idempotencyKeyOf(request, 195);
        const messages: MessageInput[] = inputs.map((m, i) => ({
          ...m,
          messageId: m.messageId ?? (key === undefined ? undefined : `${key}/${i}`),
        }));
        const pointerOf = (i: number) => `/messages/${i}`;
        const namespace = await writableNamespace(deps, principal, name);
        validateMessages(namespace, messages, pointerOf);
        checkInbound(deps, namespace, messages, pointerOf);
        await takeRate(deps, principal, namespace, messages.length);
        const rows = toRows(principal.tenantId, namespace, namespace.backend, messages);
        let outcomes: WriteOutcome[];
        try {
          outcomes = await append(namespace, rows);
        } catch (error) {
          throw pointConflict(
            error,
            messages,
            rows.map((r) => r.message_id),
            pointerOf,
          );
        }
        if (replayed(outcomes)) reply.header('idempotent-replayed', 'true');
        reply.code(202);
        const receipts = outcomes.map((o) => receiptOf(o.message));
        request.walWritten = receipts.map((r) => r.backend);
        return { namespace: namespace.name, messages: receipts };
      },
    );

    await app.register(messageRoutes(deps));
  };
}
