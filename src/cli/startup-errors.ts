import {
  DatabaseMissingError,
  DatabaseUnreachableError,
  DataDirInUseError,
  describeDatabase,
  isConnectionLoss,
  RequestRoleError,
} from '../platform/db/index.ts';
import type { Config } from '../platform/index.ts';

/**
 * The one line `mercato start` prints, instead of a stack trace, for a failure the operator can
 * fix: what is wrong and what to do. Undefined for anything else (a bug: the stack helps then).
 */
export function startupFailure(error: unknown, config: Config): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  const where = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  if (error instanceof DataDirInUseError) {
    return `${error.message}: stop it (kill ${error.pid}) or point MERCATO_DATA_DIR at another directory`;
  }
  if (code === 'EADDRINUSE') {
    return `cannot listen on ${where}: the port is in use by another process; stop it or set PORT to a free port (PORT=0 picks one)`;
  }
  if (code === 'EACCES') {
    return `cannot listen on ${where}: permission denied; use a port above 1023 or set HOST`;
  }
  if (code === 'EADDRNOTAVAIL') {
    return `cannot listen on ${where}: no such address on this machine; set HOST to one of its addresses`;
  }
  if (
    error instanceof DatabaseUnreachableError ||
    error instanceof DatabaseMissingError ||
    error instanceof RequestRoleError
  ) {
    return error.message.replace(/\s*\n\s*/g, ' ');
  }
  if (code === '3D000' && config.databaseUrl) {
    return `the database of DATABASE_URL (${describeDatabase(config.databaseUrl)}) does not exist: create it or fix DATABASE_URL`;
  }
  if (code === '28P01' || code === '28000') {
    return `PostgreSQL refused the login of DATABASE_URL: ${(error as Error).message}; fix the user or password`;
  }
  if (config.databaseUrl && isConnectionLoss(error)) {
    return `PostgreSQL at ${describeDatabase(config.databaseUrl)} went away during start-up (${(error as Error).message}); start it and run mercato start again`;
  }
  if (error instanceof Error && /^migration \S+ failed: /.test(error.message)) {
    return `${error.message.replace(/\s*\n\s*/g, ' ')}; the database is left at the migration before it`;
  }
  return undefined;
}
