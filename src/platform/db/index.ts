export { DataDirInUseError, lockDataDir } from './data-dir-lock.ts';
export {
  createPglite,
  type Database,
  type DatabaseOptions,
  openDatabase,
  openPglite,
  openPostgres,
  type PoolStats,
  type ScriptRunner,
} from './database.ts';
export { isoTime } from './iso-time.ts';
export { MIGRATIONS_DIR, type MigrationResult, migrate } from './migrator.ts';
export { RequestRoleError, requestRoleName } from './request-role.ts';
export { APP_ROLE, withSystem, withTenant } from './tenant-context.ts';
export { readAsTenant } from './tenant-read.ts';
