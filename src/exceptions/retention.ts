import type { FastifyInstance } from 'fastify';
import { type PurgeOptions, type PurgeProgress, type PurgeResult, purgeExceptions } from './archive.ts';
import type { ExceptionsDeps } from './deps.ts';
import { settingsRoutes } from './settings-routes.ts';

export type { PurgeOptions, PurgeProgress, PurgeResult } from './archive.ts';

/** How often the retention job runs. (Default: 1 hour) */
export const RETENTION_INTERVAL_MS = 3_600_000;

/**
 * Per-tenant retention: the /exceptions/settings routes, an hourly job that archives then
 * deletes what is past each tenant's settings, and `purge` to run it by hand (the CLI). Every
 * process runs the job; batches skip rows another process holds, so they share the work. A
 * tenant whose step fails is logged and left to the next run; the others are purged.
 */
export function createRetention(deps: ExceptionsDeps): {
  routes: (app: FastifyInstance) => Promise<void>;
  start(): void;
  stop(): Promise<void>;
  purge(options: PurgeOptions, progress?: PurgeProgress): Promise<PurgeResult>;
} {
  const log = deps.ctx.logger.child({ component: 'exceptions-retention' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const run = () => {
    if (running) return;
    running = purgeExceptions(deps.db)
      .then((result) => {
        // The others were purged; each failing tenant is tried again on the next run.
        for (const { tenantId, error } of result.failed)
          log.error({ tenantId, error }, 'exceptions retention failed for a tenant');
        if (result.archived + result.deleted > 0) {
          log.info(
            { archived: result.archived, deleted: result.deleted },
            'exceptions past retention archived and deleted',
          );
        }
      })
      .catch((error: unknown) => log.error({ err: error }, 'exceptions retention failed'))
      .finally(() => {
        running = undefined;
      });
  };

  return {
    routes: settingsRoutes(deps),
    start() {
      // The first run one interval after start: a restart loop must not turn it into a busy one.
      timer = setInterval(run, RETENTION_INTERVAL_MS);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running;
    },
    purge: (options, progress) => purgeExceptions(deps.db, options, progress),
  };
}
