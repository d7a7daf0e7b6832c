import { isConnectionLoss } from './db-errors.ts';

/** Where a connection string points, without its user or password: `host:port/database`. */
export function describeDatabase(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    const host = url.hostname || url.searchParams.get('host') || 'localhost';
    return `${host}:${url.port || '5432'}${url.pathname || '/'}`;
  } catch {
    return 'the configured database';
  }
}

/** PostgreSQL could not be reached within MERCATO_DB_CONNECT_TIMEOUT_SECONDS; the message says what to do. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/** The database named in DATABASE_URL does not exist (3D000); the message says what to do. */
export class DatabaseMissingError extends Error {
  override name = 'DatabaseMissingError';
}

export type ConnectRetryOptions = {
  /** Where, for the log lines and the final error (never with a password). */
  where: string;
  timeoutSeconds: number;
  /** One line per failed attempt. */
  onRetry?: (line: string, details: { attempt: number; delayMs: number; reason: string }) => void;
  sleep?: (ms: number) => Promise<void>;
};

const reasonOf = (error: unknown): string => {
  const e = error as { code?: unknown; message?: string; errors?: Array<{ message?: string }> };
  const message = e?.message || e?.errors?.[0]?.message || String(error);
  return typeof e?.code === 'string' && !message.includes(e.code) ? `${e.code}: ${message}` : message;
};

/**
 * Runs connect until it succeeds; while it fails because the server cannot be reached, tries
 * again with exponential backoff (0.5 s doubling to 5 s) for timeoutSeconds, then throws
 * DatabaseUnreachableError. A missing database throws DatabaseMissingError at once; any other
 * error (a wrong password, say) is thrown as it is.
 */
export async function connectWithRetry<T>(
  connect: () => Promise<T>,
  options: ConnectRetryOptions,
): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  let delayMs = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect();
    } catch (error) {
      if ((error as { code?: unknown }).code === '3D000') {
        const name = options.where.split('/').slice(1).join('/') || 'the database';
        throw new DatabaseMissingError(
          `database "${name}" does not exist on ${options.where.split('/')[0]}: create it (createdb ${name}) or fix DATABASE_URL`,
          { cause: error },
        );
      }
      if (!isConnectionLoss(error)) throw error;
      const reason = reasonOf(error);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DatabaseUnreachableError(
          `PostgreSQL at ${options.where} is not reachable (${reason}) after ${options.timeoutSeconds} s: ` +
            'start it or fix DATABASE_URL (MERCATO_DB_CONNECT_TIMEOUT_SECONDS sets how long to wait)',
          { cause: error },
        );
      }
      const wait = Math.min(delayMs, left);
      options.onRetry?.(
        `PostgreSQL at ${options.where} is not reachable (${reason}); attempt ${attempt}, retrying in ${(wait / 1000).toFixed(1)} s`,
        { attempt, delayMs: wait, reason },
      );
      await sleep(wait);
      delayMs = Math.min(delayMs * 2, 5000);
    }
  }
}
