import type { Kysely } from 'kysely';
import type { AppContext } from '../../platform/index.ts';
import { secretBoxOf } from '../../platform/secrets.ts';
import type { Namespace, Target } from '../namespaces/namespace.ts';
import { createTargetOpener } from '../namespaces/sealed-targets.ts';
import type { WalTables } from '../tables.ts';
import { createHttpTarget } from './http-target.ts';
import { deliverRedis } from './redis-target.ts';
import { deliverSql } from './sql-target.ts';
import type { Delivery, InternalDispatch, TargetResult } from './target-result.ts';

export type { Delivery, InternalDispatch, TargetResult } from './target-result.ts';

export type Targets = {
  /** Delivers one message to one target and says what came of it; never throws. */
  deliver(
    namespace: Namespace,
    target: Target,
    delivery: Delivery,
    internal?: InternalDispatch,
  ): Promise<TargetResult>;
  /** Closes the HTTP connections kept alive for webhooks. */
  close(): Promise<void>;
};

/** Creates the delivery targets: http (signed CloudEvents), sql, redis and internal handlers. */
export function createTargets(deps: { ctx: AppContext; db: Kysely<WalTables> }): Targets {
  // The operator's MERCATO_WAL_PRIVATE_TARGETS: a bad entry stops the start with a ConfigError.
  const http = createHttpTarget({
    privateTargets: deps.ctx.config.walPrivateTargets,
    logger: deps.ctx.logger.child({ component: 'wal-http-target' }),
    // Sealed secrets and credential headers, opened once per stored version of the namespace.
    open: createTargetOpener(secretBoxOf(deps.ctx)),
  });
  async function run(
    namespace: Namespace,
    target: Target,
    delivery: Delivery,
    internal?: InternalDispatch,
  ): Promise<TargetResult> {
    switch (target.type) {
      case 'http':
        return http.deliver(namespace, target, delivery);
      case 'sql':
        // ctx.db.kind: on PGlite no sql target runs (its one session is the superuser's).
        return deliverSql({ kind: deps.ctx.db.kind, kysely: deps.db as Kysely<unknown> }, target, delivery);
      case 'redis':
        return deliverRedis(deps.ctx.redis, deps.ctx.config.redisPrefix, target, delivery);
      case 'internal':
        if (!internal) return { outcome: 'dead', error: `no handler ${JSON.stringify(target.handler)}` };
        return internal(target.handler, delivery);
    }
  }
  return {
    async deliver(namespace, target, delivery, internal) {
      try {
        return await run(namespace, target, delivery, internal);
      } catch (error) {
        return { outcome: 'retry', error: `target ${target.name} failed: ${(error as Error).message}` };
      }
    },
    async close() {
      http.close();
    },
  };
}
