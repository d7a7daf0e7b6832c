import type { AppContext } from '../../../platform/index.ts';
import { createNatsJetStreamBackend } from '../nats-jetstream/index.ts';
import { createPendingNatsJetStreamBackend } from '../nats-jetstream/pending.ts';
import { createRedisStreamsBackend } from '../redis-streams/index.ts';
import type { StreamBackend, StreamBackendName } from './contract.ts';

/** The stream backends of this process: redis-streams with REDIS_URL, nats-jetstream with NATS_URL. */
export function createStreamBackends(ctx: AppContext): Map<StreamBackendName, StreamBackend> {
  const backends = new Map<StreamBackendName, StreamBackend>();
  if (ctx.redis)
    backends.set(
      'redis-streams',
      createRedisStreamsBackend(ctx.redis, { prefix: `${ctx.config.redisPrefix}wal` }),
    );
  if (ctx.nats) backends.set('nats-jetstream', createNatsJetStreamBackend(ctx.nats));
  // NATS_URL unreachable at start: a backend that answers 503 until the connection comes.
  else if (ctx.natsHandle)
    backends.set('nats-jetstream', createPendingNatsJetStreamBackend(ctx.natsHandle.ready));
  return backends;
}
