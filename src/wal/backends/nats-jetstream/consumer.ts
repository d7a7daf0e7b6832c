import { randomUUID } from 'node:crypto';
import {
  AckPolicy,
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  type JsMsg,
} from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Logger } from '../../../platform/observability/index.ts';
import { backendsHolding, type Namespace } from '../../namespaces/namespace.ts';
import type { Decision, StreamConsumer, StreamConsumerDeps } from '../stream/contract.ts';
import type { Core } from './core.ts';
import { KEY_PARTITIONS, type NamespaceNames, namespaceNames } from './names.ts';
import {
  appendHistory,
  decodeJson,
  type Envelope,
  encodeJson,
  historyOf,
  isWrongRevision,
  readState,
  type StoredState,
} from './state.ts';
import { startSweeper } from './sweep.ts';

/** In-flight (and delayed) unkeyed messages a namespace's consumer may hold at once. */
const UNKEYED_MAX_ACK_PENDING = 100_000;
/** How long one pull request waits for messages. */
const PULL_EXPIRES_MS = 5_000;
const RETRY_PAUSE_MS = 1_000;
const CAS_TRIES = 5;

type PullerSpec = {
  names: NamespaceNames;
  durable: string;
  filter: string;
  maxAckPending: number;
  concurrency(): number;
  namespace(): Namespace;
};

type Ctx = { core: Core; deps: StreamConsumerDeps; log: Logger; track(p: Promise<unknown>): void };

async function ensureConsumer(ctx: Ctx, spec: PullerSpec): Promise<Consumer> {
  const { core, deps } = ctx;
  await core.ensureStream(spec.names);
  const jsm = await core.jsm();
  const ackWait = deps.leaseMs * 1_000_000;
  try {
    await jsm.consumers.add(spec.names.stream, {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      // Unlimited: Mercato counts attempts itself and decides when a message is dead.
      max_deliver: -1,
      filter_subject: spec.filter,
      max_ack_pending: spec.maxAckPending,
    });
  } catch (err) {
    // Exists with other settings (another lease): align the ones that may change.
    ctx.log.debug({ err, durable: spec.durable }, 'updating the JetStream consumer');
    await jsm.consumers.update(spec.names.stream, spec.durable, {
      ack_wait: ackWait,
      max_ack_pending: spec.maxAckPending,
      max_deliver: -1,
    });
  }
  return core.js.consumers.get(spec.names.stream, spec.durable);
}

/** Writes the decision if this delivery still holds the lease (KV revision CAS); false when stale. */
async function applyDecision(kv: KV, key: string, token: string, decision: Decision): Promise<boolean> {
  for (let i = 0; i < CAS_TRIES; i++) {
    const found = await readState(kv, key);
    if (!found || found.state.leaseToken !== token || found.state.state !== 'delivering') return false;
    const s = found.state;
    const now = Date.now();
    const base: StoredState = {
      ...s,
      message: { ...s.message, targetsDone: decision.targetsDone },
      history: appendHistory(s, s.message.attempts, decision.attempts),
      leaseToken: null,
    };
    const next: StoredState =
      decision.action === 'ack'
        ? { ...base, state: 'delivered', deliveredAt: now }
        : decision.action === 'retry'
          ? { ...base, state: 'retrying', lastError: decision.error, retryAt: now + decision.delayMs }
          : { ...base, state: 'dead', lastError: decision.error, deadAt: now };
    try {
      await kv.update(key, encodeJson(next), found.revision);
      return true;
    } catch (err) {
      if (!isWrongRevision(err)) throw err;
    }
  }
  throw new Error(`state of ${key} kept changing`);
}

/** One delivery: lease it in the KV (attempts + 1, fresh token), deliver, apply the decision fenced. */
async function handle(ctx: Ctx, spec: PullerSpec, msg: JsMsg): Promise<void> {
  const envelope = decodeJson<Envelope>(msg.data);
  const kv = await ctx.core.kv();
  let leased: { before: StoredState; after: StoredState } | undefined;
  for (let i = 0; i < CAS_TRIES && !leased; i++) {
    const found = await readState(kv, envelope.key);
    const s = found?.state;
    // Gone (retention), superseded by a revive, or finished (a duplicate copy): drop it.
    if (!found || !s || s.generation !== envelope.generation || s.message.id !== envelope.id)
      return msg.ack();
    if (s.state === 'delivered' || s.state === 'dead') return msg.ack();
    const wait = Math.max(s.message.dueAt, s.retryAt ?? 0) - Date.now();
    if (wait > 0) return msg.nak(wait);
    const after: StoredState = {
      ...s,
      state: 'delivering',
      message: { ...s.message, attempts: s.message.attempts + 1 },
      leaseToken: randomUUID(),
      retryAt: null,
      published: true,
    };
    try {
      await kv.update(envelope.key, encodeJson(after), found.revision);
      leased = { before: s, after };
    } catch (err) {
      if (!isWrongRevision(err)) throw err;
    }
  }
  if (!leased) return msg.nak(RETRY_PAUSE_MS);
  const { before, after } = leased;
  const decision = await ctx.deps.deliver(spec.namespace(), after.message, historyOf(before));
  const applied = await applyDecision(kv, envelope.key, after.leaseToken!, decision);
  if (!applied) {
    ctx.log.warn(
      { messageId: after.message.messageId, deliveryId: after.message.id },
      'stale delivery: the lease expired and the message was handed out again; decision dropped',
    );
    return;
  }
  if (decision.action === 'retry') msg.nak(Math.max(1, decision.delayMs));
  else msg.ack();
}

/**
 * A pull loop on one durable consumer, at most spec.concurrency() messages in flight.
 *
 * A pull is ended with stop(), never by awaiting close(): the client resolves close() only once the
 * pull's own iteration reads the stop it queues, so a pull nobody reads (made just as the puller
 * was stopped, typically while it was still making its stream and consumer after a reconnect)
 * would keep stop() waiting for ever. The loop below reads the pull it is in; stop() then ends.
 */
function startPuller(ctx: Ctx, spec: PullerSpec): { stop(): Promise<void> } {
  let stopped = false;
  let inflight = 0;
  let iter: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const loop = (async () => {
    let consumer: Consumer | undefined;
    while (!stopped) {
      try {
        consumer ??= await ensureConsumer(ctx, spec);
        if (stopped) break;
        const free = spec.concurrency() - inflight;
        if (free <= 0) {
          await pause(PULL_EXPIRES_MS);
          continue;
        }
        iter = await consumer.fetch({ max_messages: free, expires: PULL_EXPIRES_MS });
        if (stopped) {
          // Never read: no pull request went out; stop() just unsubscribes its inbox.
          iter.stop();
          break;
        }
        for await (const msg of iter) {
          inflight++;
          const p = handle(ctx, spec, msg)
            .catch((err) =>
              ctx.log.error({ err, durable: spec.durable }, 'delivery failed; redelivered later'),
            )
            .finally(() => {
              inflight--;
              wake?.();
            });
          ctx.track(p);
        }
      } catch (err) {
        if (stopped) break;
        consumer = undefined;
        ctx.log.warn({ err, stream: spec.names.stream, durable: spec.durable }, 'pull failed; retrying');
        await pause(RETRY_PAUSE_MS);
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      iter?.stop();
      await loop;
    },
  };
}

function pullersFor(ctx: Ctx, ref: { ns: Namespace }): Array<{ stop(): Promise<void> }> {
  const prefix = ctx.core.options.prefix;
  const names = namespaceNames(prefix, ref.ns.tenantId, ref.ns.name);
  const namespace = () => ref.ns;
  const pullers = [
    startPuller(ctx, {
      names,
      durable: names.unkeyedConsumer,
      filter: names.unkeyedSubject,
      maxAckPending: UNKEYED_MAX_ACK_PENDING,
      concurrency: () => Math.max(1, ref.ns.consumerConcurrency),
      namespace,
    }),
  ];
  // One message of a partition at a time (max_ack_pending 1), held through its retries: order per key.
  for (let p = 0; p < KEY_PARTITIONS; p++) {
    pullers.push(
      startPuller(ctx, {
        names,
        durable: names.keyedConsumer(p),
        filter: names.keyedSubject(p),
        maxAckPending: 1,
        concurrency: () => 1,
        namespace,
      }),
    );
  }
  return pullers;
}

const served = (ns: Namespace) => ns.enabled && backendsHolding(ns).includes('nats-jetstream');

/**
 * Serves every namespace of deps.namespaces() that names this backend (as its own, its fallback or
 * one it is draining).
 */
export async function startConsumer(core: Core, deps: StreamConsumerDeps): Promise<StreamConsumer> {
  const log = deps.logger.child({ component: 'wal-nats-consumer' });
  const inflight = new Set<Promise<unknown>>();
  const ctx: Ctx = {
    core,
    deps,
    log,
    track(p) {
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    },
  };
  const running = new Map<string, { ref: { ns: Namespace }; pullers: Array<{ stop(): Promise<void> }> }>();
  let stopped = false;

  const refresh = async () => {
    if (stopped) return;
    const wanted = new Map(
      (await deps.namespaces()).filter(served).map((ns) => [`${ns.tenantId}/${ns.name}`, ns]),
    );
    const stopping: Promise<void>[] = [];
    for (const [id, entry] of running) {
      const ns = wanted.get(id);
      if (ns) entry.ref.ns = ns;
      else {
        running.delete(id);
        stopping.push(...entry.pullers.map((p) => p.stop()));
      }
    }
    for (const [id, ns] of wanted) {
      if (running.has(id) || stopped) continue;
      const ref = { ns };
      running.set(id, { ref, pullers: pullersFor(ctx, ref) });
    }
    await Promise.all(stopping);
  };
  let chain = refresh();
  await chain;
  const off = deps.onNamespacesChanged(() => {
    chain = chain
      .catch(() => undefined)
      .then(refresh)
      .catch((err) => log.error({ err }, 'could not re-read the namespaces'));
  });
  const sweeper = startSweeper(core, () => [...running.values()].map((e) => e.ref.ns), log);

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      off();
      sweeper.stop();
      await chain.catch(() => undefined);
      await Promise.all([...running.values()].flatMap((e) => e.pullers.map((p) => p.stop())));
      running.clear();
      // Deliveries still running get a lease's time to finish; past it, they are another consumer's.
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deps.leaseMs);
      });
      await Promise.race([Promise.allSettled([...inflight]), grace]);
      clearTimeout(timer);
    },
  };
}
