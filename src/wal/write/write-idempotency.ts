import type { FastifyRequest } from 'fastify';
import { AppError } from '../../platform/http/index.ts';
import type { WriteOutcome } from '../backends/postgres/group-commit.ts';
import type { MessageInput } from './prepare.ts';

// A write's idempotency at the routes (write-routes.ts): the Idempotency-Key header, a messageId
// written with another body, a write answered again.

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** `Idempotency-Key`, an alias of messageId for writes (they answer 202, outside the platform's replay store). */
export function idempotencyKeyOf(request: FastifyRequest, maxLength: number): string | undefined {
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

/** Maps a 409 of the committer onto the request's messageId pointers. */
export function pointConflict(
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

export const replayed = (outcomes: WriteOutcome[]) =>
  outcomes.length > 0 && outcomes.every((o) => o.replayed);
