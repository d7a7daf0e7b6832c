import type { IdentityModule } from '../identity/index.ts';
import { createIdentity } from '../identity/index.ts';
import { DataDirInUseError, lockDataDir, migrate } from '../platform/db/index.ts';
import { type AppContext, type Config, closeContext, createContext } from '../platform/index.ts';
import { systemNamespacesHook } from '../wal/index.ts';

/** Said when the embedded data directory is held by a running server. */
export function dataDirInUseMessage(error: DataDirInUseError, config: Config): string {
  return `${error.message}.
PGlite lets one process open it at a time. Either stop that server (Ctrl-C in its terminal, or kill ${error.pid})
and run this command again, or do the same through its API (see the README's API tour),
or point MERCATO_DATA_DIR elsewhere. (Data directory: ${config.dataDir})`;
}

/**
 * Runs fn with a migrated database and the identity module, holding the embedded lock meanwhile.
 * Redis and NATS are connected only when `options.streams` asks for them (`mercato wal tail`).
 */
export async function withDatabase<T>(
  config: Config,
  fn: (ctx: AppContext, identity: IdentityModule, migrated: string[]) => Promise<T>,
  options: { streams?: boolean } = {},
): Promise<T> {
  let release = () => {};
  try {
    if (!config.databaseUrl) release = lockDataDir(config.dataDir);
  } catch (error) {
    if (error instanceof DataDirInUseError) throw new CliError(dataDirInUseMessage(error, config));
    throw error;
  }
  const ctx = await createContext(
    options.streams ? config : { ...config, redisUrl: undefined, natsUrl: undefined },
  );
  try {
    const result = await migrate(ctx.db);
    if (result.error) throw result.error;
    await ctx.db.enableRequestRole();
    const onTenantCreated = [systemNamespacesHook(ctx.config.eventsBackend)];
    return await fn(ctx, await createIdentity(ctx, { onTenantCreated }), result.applied);
  } finally {
    await closeContext(ctx);
    release();
  }
}

/** An error whose message is meant for the person at the terminal, printed without a stack. */
export class CliError extends Error {
  override name = 'CliError';
}
