import type { Kysely } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { AppContext } from '../platform/index.ts';
import type { DeliverFn } from './delivery/index.ts';
import type { WalMetrics } from './metrics.ts';
import { disableTarget } from './namespaces/index.ts';
import type { Namespace, NamespaceCache, Target } from './namespaces/namespace.ts';
import type { WalTables } from './tables.ts';
import type { Targets } from './targets/index.ts';
import type { Delivery } from './targets/target-result.ts';

/** Counts deliveries to one target that came to `outcome`, and the latency of delivered ones. */
export type CountDeliveries = (
  namespace: Namespace,
  target: Target,
  outcome: string,
  deliveries: Delivery[],
) => void;

/**
 * The WAL's delivery to one target, shared by the postgres engine and every stream backend:
 * `targets.deliver`, counted in the metrics, and a target answering 410 switched off. `count`
 * counts deliveries made elsewhere (inline) the same way.
 */
export function createCountedDelivery(deps: {
  ctx: AppContext;
  db: Kysely<WalTables>;
  namespaces: NamespaceCache;
  targets: Targets;
  metrics: WalMetrics;
}): { deliver: DeliverFn; count: CountDeliveries } {
  const { ctx, db, namespaces, targets, metrics } = deps;
  const count: CountDeliveries = (namespace, target, outcome, deliveries) => {
    metrics.deliveries.inc(
      { namespace: namespace.name, target_type: target.type, outcome },
      deliveries.length,
    );
    if (outcome !== 'delivered') return;
    const now = Date.now();
    for (const { dueAt } of deliveries) {
      if (dueAt)
        metrics.deliveryLatency.observe({ namespace: namespace.name }, (now - dueAt.getTime()) / 1000);
    }
  };
  const deliver: DeliverFn = async (namespace, target, delivery, internal) => {
    const result = await targets.deliver(namespace, target, delivery, internal);
    count(namespace, target, result.outcome, [delivery]);
    // 410 Gone: the endpoint is gone for good, so the target is switched off for every message.
    if (result.outcome === 'disable') {
      const change = { tenantId: namespace.tenantId, actor: 'system:wal' };
      await withTenant(db, namespace.tenantId, (trx) =>
        disableTarget(trx, change, namespace.name, target.name, result.error),
      ).catch((err: unknown) => ctx.logger.error({ err }, 'could not disable a target'));
      namespaces.invalidate(namespace.tenantId, namespace.name);
    }
    return result;
  };
  return { deliver, count };
}
