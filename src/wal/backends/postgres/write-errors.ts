import { AppError } from '../../../platform/http/index.ts';
import type { NewMessageRow } from './message-rows.ts';

/** 409 for messageIds that exist with another body. */
export function idempotencyConflict(messageIds: string[]): AppError {
  const list = messageIds.map((id) => JSON.stringify(id)).join(', ');
  return new AppError('IDEMPOTENCY_KEY_REUSED', `messageId ${list} was written with a different body`, {
    messageIds,
  });
}

/** An insert's failure as the caller's error: a retry (503) or a namespace gone (404), else itself. */
export function insertError(error: unknown, rows: NewMessageRow[]): unknown {
  const code = (error as { code?: unknown }).code;
  // Conflicted, then vanished before the read (deleted by retention): a 503 the caller retries.
  if (code === '40001') {
    return new AppError('SERVICE_UNAVAILABLE', 'a message changed during the write; retry', {
      retryAfterSeconds: 1,
    });
  }
  // A namespace deleted since the caller looked it up (the check of migration 0011).
  if (code === '23503') {
    const names = [...new Set(rows.map((r) => r.namespace))].join(', ');
    return new AppError('NOT_FOUND', `namespace ${names} not found`);
  }
  return error;
}

/** True for errors that mean the database is unreachable or shutting down (worth a 503, not a 500). */
export function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (/^(08|53|57)[0-9A-Z]{3}$/.test(code)) return true;
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code);
}
