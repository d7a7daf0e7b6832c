import type { AppContext, MercatoModule } from '../platform/index.ts';
import { createAlerts } from './alerts.ts';
import { createCapture } from './capture.ts';
import type { ExceptionHooks, ExceptionsDeps, ExceptionsModuleDeps } from './deps.ts';
import { exceptionRoutes } from './exception-routes.ts';
import { groupRoutes } from './group-routes.ts';
import { createRetention, type PurgeOptions, type PurgeProgress } from './retention.ts';
import { createRetries } from './retry.ts';
import { createRollupFolder } from './rollup-fold.ts';
import { ruleRoutes } from './rule-routes.ts';
import type { ExceptionsDb } from './tables.ts';

export type ExceptionsModule = MercatoModule & {
  /** How the parts call each other; tests drive the alert hooks through it. */
  hooks: ExceptionHooks;
  /** Folds the summary's rollup now (the job does every few seconds); returns the rows folded. */
  foldRollup(): Promise<number>;
  /** Archives then deletes resolved and closed exceptions past retention; a tenant that fails is in `failed`, the others go on. */
  purge(
    options: PurgeOptions,
    progress?: PurgeProgress,
  ): ReturnType<ReturnType<typeof createRetention>['purge']>;
};

/**
 * The interface exception collector: captures every failed integration (the tenant's
 * `interface-exceptions`, rejected and cancelled orders, WAL dead letters), classifies it by the
 * tenant's rules, groups it, and lets operators search, retry, acknowledge and resolve it, with
 * alerts and retention.
 */
export async function createExceptions(
  ctx: AppContext,
  moduleDeps: ExceptionsModuleDeps,
): Promise<ExceptionsModule> {
  const hooks = {} as ExceptionHooks;
  const deps: ExceptionsDeps = { ...moduleDeps, ctx, db: ctx.db.kysely as ExceptionsDb, hooks };
  const alerts = createAlerts(deps);
  const retries = createRetries(deps);
  const capture = createCapture(deps);
  const retention = createRetention(deps);
  const rollup = createRollupFolder(deps);
  Object.assign(hooks, {
    onCaptured: alerts.onCaptured,
    onRetryFailed: alerts.onRetryFailed,
    invalidatePayload: retries.invalidatePayload,
    loadPayload: retries.loadPayload,
    retry: retries.retry,
  } satisfies ExceptionHooks);
  // Subscribers and the inbound namespace's check are declared before the WAL starts.
  capture.subscribe();
  return {
    name: 'exceptions',
    async routes(app) {
      await app.register(exceptionRoutes(deps));
      await app.register(ruleRoutes(deps));
      await app.register(groupRoutes(deps));
      await app.register(retries.routes);
      await app.register(alerts.routes);
      await app.register(retention.routes);
    },
    async start() {
      capture.start();
      retention.start();
      rollup.start();
    },
    async stop() {
      await capture.stop();
      await retention.stop();
      await rollup.stop();
      await retries.close();
    },
    purge: (options, progress) => retention.purge(options, progress),
    foldRollup: () => rollup.fold(),
    hooks,
  };
}
