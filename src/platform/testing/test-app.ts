import type { FastifyInstance } from 'fastify';
import { createIdentity, type IdentityModule } from '../../identity/index.ts';
import type { AppContext, MercatoModule } from '../context.ts';
import { buildApp } from '../http/index.ts';
import { closeContext, createContext, loadConfig } from '../index.ts';
import { cloneTestDatabase, testDatabaseKind } from './test-databases.ts';

export type TestApp = {
  app: FastifyInstance;
  ctx: AppContext;
  identity: IdentityModule;
  /** The PostgreSQL URL of this file's database; undefined on PGlite. */
  databaseUrl: string | undefined;
  close(): Promise<void>;
};

/** Settings every test app starts from; a test overrides any of them through env. */
const TEST_ENV: Record<string, string> = {
  LOG_LEVEL: 'silent',
  MERCATO_DEMO: 'false',
  MERCATO_RATE_LIMIT_ANONYMOUS: '100000',
  MERCATO_RATE_LIMIT_AUTHENTICATED: '100000',
  MERCATO_LOGIN_RATE_LIMIT: '100000',
};

/**
 * The whole app on a database of its own (PGlite or PostgreSQL, per the Vitest project),
 * ready for app.inject(). Redis is used only when env names REDIS_URL.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: { modules?: (ctx: AppContext, identity: IdentityModule) => Promise<MercatoModule[]> } = {},
): Promise<TestApp> {
  const { db, url, drop } = await cloneTestDatabase();
  const config = loadConfig({ ...TEST_ENV, ...env, ...(url ? { DATABASE_URL: url } : {}) });
  const ctx = await createContext(config, { db });
  const identity = await createIdentity(ctx);
  const extra = (await options.modules?.(ctx, identity)) ?? [];
  const modules = [identity, ...extra];
  const app = await buildApp(ctx, { authenticate: identity.authenticate, modules });
  await app.ready();
  for (const module of modules) await module.start?.();
  return {
    app,
    ctx,
    identity,
    databaseUrl: url,
    async close() {
      await app.close();
      for (const module of [...modules].reverse()) await module.stop?.();
      await closeContext({ ...ctx, db: { ...ctx.db, close: async () => {} } });
      await drop();
    },
  };
}

export { testDatabaseKind };
