import { closeRedis } from '../../../platform/redis-client.ts';
import { backendsHolding } from '../../namespaces/namespace.ts';
import type { StreamConsumer, StreamConsumerDeps } from '../stream/contract.ts';
import { startClaimer } from './claim-idle.ts';
import { type ConsumerContext, type ConsumerState, newSlot, type Slot } from './consumer-state.ts';
import { nsKeys } from './keys.ts';
import { BACKEND } from './message.ts';
import { startMover } from './move-delayed.ts';
import { ensureSlot, readLoop } from './read-loop.ts';

export type { ConsumerContext } from './consumer-state.ts';

/**
 * One consumer: a blocking XREADGROUP over every served stream (on its own duplicate
 * connection), a mover of due delayed messages, and an XAUTOCLAIM of entries idle longer than
 * the lease. Read entries are taken (fenced lease, order per key) and finished deliveries'
 * decisions applied by one `cycle` script call per namespace per tick, which also reads and takes
 * the next entries: under load a message costs a share of one round trip.
 */
export async function startConsumer(ctx: ConsumerContext, deps: StreamConsumerDeps): Promise<StreamConsumer> {
  const { redis } = ctx;
  const log = deps.logger.child({ component: 'wal-redis-streams', consumer: ctx.consumerName });
  const inflight = new Set<Promise<void>>();
  let wake: (() => void) | null = null;
  const state: ConsumerState = {
    ctx,
    deps,
    log,
    keyPrefix: redis.options.keyPrefix ?? '',
    running: true,
    slots: new Map<string, Slot>(),
    nudge: () => {
      const w = wake;
      wake = null;
      w?.();
    },
    idle: (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    track: (work: Promise<void>) => {
      inflight.add(work);
      void work.finally(() => inflight.delete(work));
    },
  };

  async function reload() {
    const next = new Map<string, Slot>();
    for (const ns of await deps.namespaces()) {
      if (!ns.enabled || !backendsHolding(ns).includes(BACKEND)) continue;
      const keys = nsKeys(ctx.prefix, ns.tenantId, ns.name);
      const prev = state.slots.get(keys.stream);
      const slot = prev ?? newSlot(ns, keys, deps.leaseMs);
      // A namespace new here, made again under its name, or found dropped (deleted; it may be
      // named again since) has its group made, or is found dropped. Redis unreachable (at start,
      // or now): served anyway; the read loop makes its group on NOGROUP once Redis answers.
      const fresh = !prev || prev.dropped || prev.ns.createdAt !== ns.createdAt;
      slot.ns = ns;
      if (fresh) slot.dropped = false;
      if (fresh && redis.status === 'ready') {
        await ensureSlot(state, slot).catch((err: unknown) =>
          log.debug({ err }, 'ensuring the group failed'),
        );
      }
      next.set(keys.stream, slot);
    }
    state.slots = next;
    state.nudge();
  }

  await reload();
  let reloading = Promise.resolve();
  const unsubscribe = deps.onNamespacesChanged(() => {
    reloading = reloading.then(reload).catch((err) => log.error({ err }, 'reloading namespaces failed'));
  });
  const reader = redis.duplicate();
  // Reconnects on its own; say so once per outage instead of ioredis's "unhandled error event".
  let readerDown = false;
  reader.on('error', (err: Error) => {
    if (!readerDown) log.warn({ err: err.message }, 'redis-streams reader connection error');
    readerDown = true;
  });
  reader.on('ready', () => {
    readerDown = false;
    state.nudge();
  });
  reader.connect().catch(() => {});
  const reading = readLoop(state, reader);
  const stopMover = startMover(state);
  const stopClaimer = startClaimer(state);
  log.info({ namespaces: state.slots.size }, 'redis-streams consumer started');

  return {
    async stop() {
      if (!state.running) return;
      state.running = false;
      unsubscribe();
      stopMover();
      stopClaimer();
      state.nudge();
      await reading;
      // Taken messages still waiting for a slot are delivered too, before stop returns.
      while (inflight.size > 0) await Promise.all([...inflight]);
      await reloading;
      await closeRedis(reader);
    },
  };
}
