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

/** Modules started after identity, made on the app's context. */
export type TestAppOptions = {
  modules?: (ctx: AppContext, identity: IdentityModule) => Promise<MercatoModule[]>;
};

/** Settings every test app starts from; a test overrides any of them through env. */
const TEST_ENV: Record<string, string> = {
  LOG_LEVEL: 'silent',
  MERCATO_DEMO: 'false',
  MERCATO_RATE_LIMIT_ANONYMOUS: '100000',
  MERCATO_RATE_LIMIT_AUTHENTICATED: '100000',
  MERCATO_LOGIN_RATE_LIMIT: '100000',
};

/** The app's modules on ctx, built and started; stop() closes the app and stops them in reverse. */
async function startModules(ctx: AppContext, options: TestAppOptions) {
  const identity = await createIdentity(ctx);
  const extra = (await options.modules?.(ctx, identity)) ?? [];
  // As server.ts does: tenants created from now on get what each module gives every tenant.
  for (const module of extra) if (module.onTenantCreated) identity.addTenantHook(module.onTenantCreated);
  const modules = [identity, ...extra];
  const app = await buildApp(ctx, { authenticate: identity.authenticate, modules });
  await app.ready();
  for (const module of modules) await module.start?.();
  return {
    app,
    identity,
    async stop() {
      await app.close();
      for (const module of [...modules].reverse()) await module.stop?.();
    },
  };
}

/**
 * The whole app on a database of its own (PGlite or PostgreSQL, per the Vitest project),
 * ready for app.inject(). Redis is used only when env names REDIS_URL.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const { db, url, drop } = await cloneTestDatabase();
  const config = loadConfig({ ...TEST_ENV, ...env, ...(url ? { DATABASE_URL: url } : {}) });
  const ctx = await createContext(config, { db });
  const { app, identity, stop } = await startModules(ctx, options);
  return {
    app,
    ctx,
    identity,
    databaseUrl: url,
    async close() {
      await stop();
      await closeContext({ ...ctx, db: { ...ctx.db, close: async () => {} } });
      await drop();
    },
  };
}

export type SecondProcess = Pick<TestApp, 'app' | 'ctx' | 'identity' | 'close'>;

/**
 * Another process on the same PostgreSQL database (a test app's databaseUrl): a context, pools
 * and LISTEN connections of its own, so a change made through one process must reach the other's
 * caches by NOTIFY. close() stops it and leaves the database to its owner.
 */
export async function startSecondProcess(
  databaseUrl: string,
  options: TestAppOptions = {},
): Promise<SecondProcess> {
  const ctx = await createContext(loadConfig({ ...TEST_ENV, DATABASE_URL: databaseUrl }));
  const { app, identity, stop } = await startModules(ctx, options);
  return {
    app,
    ctx,
    identity,
    async close() {
      await stop();
      await closeContext(ctx);
    },
  };
}

export { testDatabaseKind };
