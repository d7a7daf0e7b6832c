export { lockNamed, lockNamedShared, tryLockNamed } from './advisory-lock.ts';
export {
  type CommitStatement,
  commitQueue,
  deferToCommit,
  discardCommitQueues,
  flushCommitQueues,
  flushDeferred,
  runCommitStatement,
} from './commit-queues.ts';
export {
  connectWithRetry,
  DatabaseMissingError,
  DatabaseUnreachableError,
  describeDatabase,
} from './connect-retry.ts';
export { DataDirInUseError, lockDataDir } from './data-dir-lock.ts';
export {
  createPglite,
  type Database,
  type DatabaseOptions,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  openDatabase,
  openPglite,
  openPostgres,
  type PoolStats,
  type ScriptRunner,
} from './database.ts';
export {
  DATABASE_RETRY_AFTER_SECONDS,
  databaseProblem,
  isConnectionLoss,
  isTransientConflict,
} from './db-errors.ts';
export { isoTime } from './iso-time.ts';
export { type JsonColumn, jsonObjects, jsonRows } from './json-rows.ts';
export { MIGRATIONS_DIR, type MigrationResult, migrate } from './migrator.ts';
export { causeOf, together } from './pipelined-connection.ts';
export { RequestRoleError, requestRoleName } from './request-role.ts';
export {
  AbortedTransactionError,
  APP_ROLE,
  type TransactionSettings,
  withSystem,
  withSystemSettings,
  withTenant,
} from './tenant-context.ts';
export { readAsTenant } from './tenant-read.ts';
