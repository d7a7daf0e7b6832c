import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError, principalOf, SECURED } from '../../platform/http/index.ts';
import {
  createGroupCommitter,
  type GroupCommitter,
  type WriteOutcome,
} from '../backends/postgres/group-commit.ts';
import type { WalDeps } from '../deps.ts';
import type {} from '../metrics.ts';
import { createAppender } from './append.ts';
import { messageRoutes } from './message-routes.ts';
import { type MessageInput, receiptOf, toRows, validateMessages } from './prepare.ts';
import { idempotencyKeyOf, pointConflict, replayed } from './write-idempotency.ts';
import { checkInbound, maySomeNamespace, writableNamespace } from './write-namespace.ts';
import { takeRate } from './write-rate-limit.ts';
import { BatchBody, BatchReceipt, Receipt, WriteBody } from './write-schemas.ts';

// SECURED's inferred type is not FastifySchema's security shape; its value is.
const base = { tags: ['wal'], security: SECURED as Record<string, string[]>[] };
// Large enough for the largest payload a namespace may allow (16 MiB); each namespace's own
// maxPayloadBytes then answers a precise 413.
const SINGLE_BODY_LIMIT = 17 * 1024 * 1024;
const BATCH_BODY_LIMIT = 32 * 1024 * 1024;

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
    const append = createAppender(
      committer,
      deps.streams,
      { db: deps.db, delivery: deps.inline },
      { db: deps.db, namespaces: deps.namespaces },
    );
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
