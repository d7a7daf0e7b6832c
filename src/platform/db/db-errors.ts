import { AppError } from '../http/errors.ts';

/** How long a caller is told to wait before retrying what a database fault refused. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

// Socket errors of a server that is down, unreachable, or dropped the connection.
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
// SQLSTATEs of a server shutting down, restarting or full: 57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now, 53300 too_many_connections. Class 08 is connection
// exceptions as a whole.
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
// What pg says, without a code, when a connection died under it or the pool could not get one in time.
const LOST_MESSAGES =
  /Connection terminated|connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|Connection ended unexpectedly/i;

/** The error and every error it wraps (cause chains, AggregateError of a multi-address connect). */
function* chain(error: unknown, depth = 0): Generator<Error & { code?: unknown }> {
  if (!(error instanceof Error) || depth > 5) return;
  yield error;
  if (error instanceof AggregateError) for (const inner of error.errors) yield* chain(inner, depth + 1);
  if (error.cause !== undefined) yield* chain(error.cause, depth + 1);
}

/** True when the error means PostgreSQL could not be reached or dropped the connection. */
export function isConnectionLoss(error: unknown): boolean {
  for (const e of chain(error)) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (SOCKET_CODES.has(code) || UNAVAILABLE_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
    if (LOST_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/** True when PostgreSQL cancelled the statement (57014: statement_timeout, or a cancel request). */
export function isStatementCancelled(error: unknown): boolean {
  for (const e of chain(error)) if (e.code === '57014') return true;
  return false;
}

// SQLSTATEs of a transaction undone by a concurrent one, which succeeds when run again:
// 40P01 deadlock_detected, 40001 serialization_failure, 55P03 lock_not_available (a row locked
// NOWAIT that another transaction holds).
const CONFLICT_STATES = new Set(['40P01', '40001', '55P03']);

/**
 * True when PostgreSQL undid the statement's transaction because of a concurrent one (a deadlock,
 * a serialization failure, a row locked NOWAIT that another holds): running it again succeeds.
 */
export function isTransientConflict(error: unknown): boolean {
  for (const e of chain(error)) if (typeof e.code === 'string' && CONFLICT_STATES.has(e.code)) return true;
  return false;
}

/** True when PostgreSQL ended a session left idle inside a transaction (25P03). */
function isIdleTransactionTimeout(error: unknown): boolean {
  for (const e of chain(error)) if (e.code === '25P03') return true;
  return false;
}

/**
 * The problem a database fault answers, or undefined when the error is not one:
 * - connection lost, refused or the server shutting down: 503 DATABASE_UNAVAILABLE;
 * - a statement past MERCATO_DB_STATEMENT_TIMEOUT_MS (cancelled, 57014) or a transaction left
 *   idle past twice it (25P03): 503 SERVICE_UNAVAILABLE. The database is up; this request was
 *   too slow (usually load or a lock held elsewhere), so trying again later may well succeed.
 * - a transaction undone by a concurrent one (isTransientConflict) that its caller did not run
 *   again: 503 SERVICE_UNAVAILABLE, Retry-After 1; nothing of it was written.
 * All carry Retry-After.
 */
export function databaseProblem(error: unknown): AppError | undefined {
  if (isTransientConflict(error)) {
    return new AppError(
      'SERVICE_UNAVAILABLE',
      'the request met a concurrent change and was undone (nothing was written); retry',
      { retryAfterSeconds: 1 },
      { cause: error },
    );
  }
  const extras = { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS };
  if (isStatementCancelled(error) || isIdleTransactionTimeout(error)) {
    return new AppError(
      'SERVICE_UNAVAILABLE',
      'a database statement took longer than the statement timeout and was cancelled; retry shortly',
      extras,
      { cause: error },
    );
  }
  if (isConnectionLoss(error)) {
    return new AppError('DATABASE_UNAVAILABLE', 'the database cannot be reached; retry shortly', extras, {
      cause: error,
    });
  }
  return undefined;
}
