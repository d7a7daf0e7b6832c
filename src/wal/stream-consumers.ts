import type { AppContext } from '../platform/index.ts';
import type { StreamConsumer } from './backends/stream/index.ts';
import { createStreamDelivery, type StreamDeliveryDeps } from './delivery/stream-delivery.ts';
import { backendsHolding, type Namespace, type NamespaceCache } from './namespaces/namespace.ts';
import { capRetention } from './namespaces/retention-cap.ts';
import type { StreamBackends } from './write/append.ts';

export type StreamConsumersDeps = Omit<StreamDeliveryDeps, 'logger'> & {
  ctx: AppContext;
  streams: StreamBackends;
  namespaces: NamespaceCache;
  leaseMs: number;
};

/**
 * Starts a consumer on each stream backend this process has, serving the namespaces on it (as
 * their backend, their fallback or one they are draining). Each is pushed to `consumers` as soon as it runs, so that
 * stopping the WAL stops those started before one that failed to.
 */
export async function startStreamConsumers(
  deps: StreamConsumersDeps,
  consumers: StreamConsumer[],
): Promise<void> {
  const { ctx, db, streams, namespaces, leaseMs } = deps;
  // No namespace delivers more at once, nor keeps its finished messages longer, than the operator
  // allows (older rows may say more): the stream backends' retention reads these periods.
  const maxConcurrency = ctx.config.walMaxConcurrency;
  const capped = (n: Namespace): Namespace =>
    capRetention(
      n.consumerConcurrency > maxConcurrency ? { ...n, consumerConcurrency: maxConcurrency } : n,
      ctx.config.walMaxRetentionSeconds,
    );
  for (const stream of streams.values()) {
    consumers.push(
      await stream.consume({
        logger: ctx.logger,
        leaseMs,
        namespaces: async () =>
          (await namespaces.all()).filter((n) => backendsHolding(n).includes(stream.name)).map(capped),
        onNamespacesChanged: (listener) => namespaces.onChange(listener),
        deliver: createStreamDelivery(
          {
            db,
            deliver: deps.deliver,
            internal: deps.internal,
            logger: ctx.logger,
            onDeadLetter: deps.onDeadLetter,
            circuits: deps.circuits,
            systemRetry: deps.systemRetry,
          },
          stream.name,
        ),
      }),
    );
  }
}
