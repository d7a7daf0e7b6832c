import cluster from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import { seedDemoStore } from './demo-store.ts';
import { seedDemo } from './identity/demo.ts';
import { createIdentity, type IdentityModule } from './identity/index.ts';
import { createMercatoModules } from './modules.ts';
import { lockDataDir, migrate } from './platform/db/index.ts';
import { buildApp } from './platform/http/index.ts';
import {
  type AppContext,
  type Config,
  closeContext,
  createContext,
  type MercatoModule,
} from './platform/index.ts';

export type RunningServer = { app: FastifyInstance; ctx: AppContext; url: string; stop(): Promise<void> };

/** The modules this process runs, in start order, per MERCATO_MODULES. */
async function createModules(ctx: AppContext) {
  const identity = await createIdentity(ctx);
  const modules: MercatoModule[] = [];
  if (ctx.config.modules.includes('identity')) modules.push(identity);
  modules.push(...(await createMercatoModules(ctx, identity)).modules);
  return { identity, modules };
}

/** Applies migrations and makes sure the request role exists; returns what to print. */
async function migrateDatabase(ctx: AppContext): Promise<string[]> {
  const result = await migrate(ctx.db);
  if (result.error) throw result.error;
  await ctx.db.enableRequestRole();
  return result.applied.length > 0 ? [`Applied ${result.applied.length} migration(s).`] : [];
}

/**
 * Seeds the demo tenant when MERCATO_DEMO is on and it is missing; returns what to print, and
 * the demo users' password when it made them (their shop's catalog is seeded with it).
 */
async function seedDemoData(
  ctx: AppContext,
  identity: IdentityModule,
): Promise<{ notes: string[]; storePassword?: string }> {
  if (!ctx.config.demo) return { notes: [] };
  const seeded = await seedDemo(identity.deps, ctx.config.demoPassword);
  if (!seeded.created) return { notes: seeded.warning ?? [] };
  const notes = [
    'Seeded the demo tenant "demo": admin@demo.test (admin) and customer@demo.test (customer),',
    'and the platform admin admin@platform.test (tenant "platform").',
    seeded.password && !ctx.config.demoPassword
      ? `Their password, shown this once: ${seeded.password}`
      : 'Their password is MERCATO_DEMO_PASSWORD.',
    ...(seeded.warning ?? []),
  ];
  const storePassword = seeded.password ?? ctx.config.demoPassword;
  return storePassword ? { notes, storePassword } : { notes };
}

/**
 * The demo shop's catalog, stock, shipping and tax, when the demo was just seeded and this process
 * runs those modules (and identity, whose login the seeding signs in with); returns what to print.
 * A failure is said, not thrown: the demo tenant and its users are made already, and start-up
 * must still print their password.
 */
async function seedStoreIfNew(
  app: FastifyInstance,
  ctx: AppContext,
  password: string | undefined,
): Promise<string[]> {
  const needed = ['identity', 'catalog', 'inventory', 'cart'] as const;
  if (!password || !needed.every((m) => ctx.config.modules.includes(m))) return [];
  try {
    await seedDemoStore(app, password);
    return ['The demo shop has a catalog with stock, shipping options and tax rates.'];
  } catch (error) {
    ctx.logger.error({ err: error }, 'demo store seeding failed');
    return [
      `The demo shop's catalog could not be seeded (${(error as Error).message}); the shop starts empty.`,
    ];
  }
}

/** Serves the API on config.host:config.port; stop() drains requests and closes every pool. */
export async function startServer(
  config: Config,
  options: { prepare?: boolean } = {},
): Promise<RunningServer> {
  const release = config.databaseUrl ? () => {} : lockDataDir(config.dataDir);
  let ctx: AppContext | undefined;
  try {
    ctx = await createContext(config);
    const prepare = options.prepare !== false;
    const notes = prepare ? await migrateDatabase(ctx) : [];
    const { identity, modules } = await createModules(ctx);
    const demo = prepare ? await seedDemoData(ctx, identity) : { notes: [] };
    notes.push(...demo.notes);
    const app = await buildApp(ctx, { authenticate: identity.authenticate, modules });
    notes.push(...(await seedStoreIfNew(app, ctx, demo.storePassword)));
    await app.listen({ host: config.host, port: config.port });
    for (const module of modules) await module.start?.();
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
    for (const line of notes) console.log(line);
    const running = ctx;
    return {
      app,
      ctx,
      url,
      async stop() {
        // A keep-alive connection whose last request finishes during the drain turns idle after
        // close() began; close those as they appear instead of waiting for their timeout.
        const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
        try {
          await app.close();
        } finally {
          clearInterval(sweep);
        }
        for (const module of [...modules].reverse()) await module.stop?.();
        await closeContext(running);
        release();
      },
    };
  } catch (error) {
    if (ctx) await closeContext(ctx);
    release();
    throw error;
  }
}

function printBanner(url: string, config: Config) {
  const where = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`;
  console.log(`Mercato is serving on ${where}
  API      ${url}/api/v1
  Docs     ${url}/docs
  OpenAPI  ${url}/openapi.json
  Metrics  ${url}/metrics
  Health   ${url}/health/ready`);
}

/** `mercato start`: one process, or a primary that prepares the database and forks MERCATO_WORKERS. */
export async function runServer(config: Config): Promise<void> {
  if (config.workers > 1 && cluster.isPrimary) {
    const ctx = await createContext(config);
    try {
      const notes = await migrateDatabase(ctx);
      const { identity, modules } = await createModules(ctx);
      const demo = await seedDemoData(ctx, identity);
      notes.push(...demo.notes);
      if (demo.storePassword) {
        // The store is seeded through the API, in-process, before any worker serves.
        const app = await buildApp(ctx, { authenticate: identity.authenticate, modules });
        try {
          notes.push(...(await seedStoreIfNew(app, ctx, demo.storePassword)));
        } finally {
          await app.close();
        }
      }
      for (const line of notes) console.log(line);
    } finally {
      await closeContext(ctx);
    }
    let stopping = false;
    let serving = false;
    for (let i = 0; i < config.workers; i++) cluster.fork();
    cluster.once('listening', (_worker, address) => {
      serving = true;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      printBanner(`http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`, config);
      console.log(`  Workers  ${config.workers} (node:cluster)`);
    });
    cluster.on('exit', (worker, code) => {
      if (stopping) return;
      // A worker that fails before any serves (port in use, …) said why; forking again would loop.
      if (!serving && code !== 0) {
        process.exitCode = 1;
        stop();
        return;
      }
      console.error(`worker ${worker.process.pid} exited with ${code}; starting another`);
      cluster.fork();
    });
    const stop = () => {
      stopping = true;
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  // Listen for signals before starting: one that lands during start-up stops the server once it is up.
  let stopping = false;
  let running: RunningServer | undefined;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    if (!running) return;
    running.ctx.logger.info({ signal }, 'draining in-flight requests');
    running
      .stop()
      .then(() => process.exit(0))
      .catch((error) => {
        console.error(error);
        process.exit(1);
      });
  };
  // on, not once: a library's signal-exit listener re-raises the signal when it believes it is alone.
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  running = await startServer(config, { prepare: cluster.isPrimary });
  if (cluster.isPrimary) printBanner(running.url, config);
  if (stopping) {
    stopping = false;
    shutdown('signal during start-up');
  }
}
