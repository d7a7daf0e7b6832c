import type { Redis } from 'ioredis';
import { closeRedis } from '../../../platform/redis-client.ts';
import type { Namespace } from '../../namespaces/namespace.ts';
import type { Decision, StreamConsumer, StreamConsumerDeps, StreamMessage } from '../stream/contract.ts';
import { GROUP, type NsKeys, nsKeys } from './keys.ts';
import {
  BACKEND,
  type Entry,
  fieldsOf,
  historyEntry,
  historyOf,
  isConnectionError,
  messageOf,
  streamsOf,
} from './message.ts';
import type { Scripts } from './scripts.ts';

export type ConsumerContext = {
  redis: Redis;
  scripts: Scripts;
  prefix: string;
  consumerName: string;
  batchSize: number;
  blockMs: number;
};

/** The delayed sets are polled at least this often (other processes add to them too). */
const MOVE_POLL_MS = 50;
/** Members moved per namespace per mover run. */
const MOVE_LIMIT = 500;
/**
 * Cycle calls in flight per namespace: while Redis runs one, this process delivers what the last
 * one took and gathers decisions for the next. Decisions are fenced by lease token, so the order
 * in which two calls land does not matter.
 */
const CYCLES_IN_FLIGHT = 2;
/**
 * Messages held (taken, not yet decided) per namespace, in multiples of its consumerConcurrency,
 * while deliveries take well under the lease; otherwise one multiple.
 */
const PREFETCH = 4;

/**
 * A namespace served: `held` entries read and not decided (at most PREFETCH × consumerConcurrency);
 * finished deliveries' decisions and newly read entries wait for the next cycle call.
 */
type Slot = {
  ns: Namespace;
  keys: NsKeys;
  held: number;
  /** Taken and waiting for a free delivery slot (the prefetch). */
  ready: Array<[token: string, fields: unknown, history: unknown]>;
  active: number;
  decisions: Array<{ json: string; done: (result: 'ok' | 'stale') => void; messageId: string }>;
  toTake: string[];
  /** Cycle calls in flight (at most CYCLES_IN_FLIGHT) and the entries they were asked to take or read. */
  cycles: number;
  fetching: number;
  /** Moving average of how long a delivery takes, ms (starts at the lease: slow until shown quick). */
  deliveryMs: number;
  again: boolean;
  cursor: string;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One consumer: a blocking XREADGROUP over every served stream (on its own duplicate
 * connection), a mover of due delayed messages, and an XAUTOCLAIM of entries idle longer than
 * the lease. Read entries are taken (fenced lease, order per key) and finished deliveries'
 * decisions applied by one `cycle` script call per namespace per tick, which also reads and takes
 * the next entries: under load a message costs a share of one round trip.
 */
export async function startConsumer(ctx: ConsumerContext, deps: StreamConsumerDeps): Promise<StreamConsumer> {
  const { redis, scripts } = ctx;
  const keyPrefix = redis.options.keyPrefix ?? '';
  const log = deps.logger.child({ component: 'wal-redis-streams', consumer: ctx.consumerName });
  let running = true;
  let slots = new Map<string, Slot>();
  const inflight = new Set<Promise<void>>();
  let wake: (() => void) | null = null;
  const nudge = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function ensureGroup(keys: NsKeys) {
    try {
      await redis.xgroup('CREATE', keys.stream, GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error && err.message.includes('BUSYGROUP'))) throw err;
    }
  }

  async function reload() {
    const next = new Map<string, Slot>();
    for (const ns of await deps.namespaces()) {
      if (!ns.enabled || (ns.backend !== BACKEND && ns.fallbackBackend !== BACKEND)) continue;
      const keys = nsKeys(ctx.prefix, ns.tenantId, ns.name);
      const prev = slots.get(keys.stream);
      // Redis unreachable (at start, or now): serve the namespace anyway; the read loop creates
      // its group on NOGROUP once Redis answers.
      if (!prev && redis.status === 'ready') {
        await ensureGroup(keys).catch((err: unknown) => log.debug({ err }, 'XGROUP CREATE failed'));
      }
      if (prev) prev.ns = ns;
      next.set(
        keys.stream,
        prev ?? {
          ns,
          keys,
          held: 0,
          ready: [],
          active: 0,
          decisions: [],
          toTake: [],
          cycles: 0,
          fetching: 0,
          deliveryMs: deps.leaseMs,
          again: false,
          cursor: '0-0',
        },
      );
    }
    slots = next;
    nudge();
  }

  function decisionJson(slot: Slot, message: StreamMessage, token: string, decision: Decision): string {
    const retention =
      decision.action === 'ack' ? slot.ns.deliveredRetentionSeconds : slot.ns.deadRetentionSeconds;
    return JSON.stringify({
      m: message.messageId,
      t: token,
      a: decision.action,
      d: decision.action === 'retry' ? Math.max(0, Math.ceil(decision.delayMs)) : 0,
      e: decision.action === 'ack' ? '' : decision.error,
      td: JSON.stringify(decision.targetsDone),
      r: retention,
      h: decision.attempts.map((a) => historyEntry(a, message.attempts)),
    });
  }

  /**
   * How many messages a namespace may hold: PREFETCH times its concurrency, so the next messages
   * are here while cycle calls run; only while deliveries are quick, as a held message's lease runs.
   */
  const windowOf = (slot: Slot) =>
    (slot.deliveryMs * PREFETCH < deps.leaseMs / 4 ? PREFETCH : 1) * slot.ns.consumerConcurrency;
  /** How many more it may read now. */
  const room = (slot: Slot) => Math.max(0, windowOf(slot) - slot.held - slot.fetching);

  const track = (work: Promise<void>) => {
    inflight.add(work);
    void work.finally(() => inflight.delete(work));
  };

  /** Starts deliveries of taken messages while fewer than consumerConcurrency run. */
  function pump(slot: Slot) {
    while (slot.active < slot.ns.consumerConcurrency && slot.ready.length > 0) {
      const [token, fields, history] = slot.ready.shift()!;
      slot.active += 1;
      track(
        deliver(slot, token, fields, history).finally(() => {
          slot.active -= 1;
          pump(slot);
        }),
      );
    }
  }

  /**
   * Delivers one taken message and queues its decision for the next cycle. The delivery slot is
   * free again once the handler is done: the message stays held (leased) until the cycle has
   * applied the decision, and the next message of its key is released only then.
   */
  async function deliver(slot: Slot, token: string, fields: unknown, history: unknown) {
    const message = messageOf(fieldsOf(fields));
    let decision: Decision;
    const started = performance.now();
    try {
      decision = await deps.deliver(slot.ns, message, historyOf(history));
      slot.deliveryMs = 0.8 * slot.deliveryMs + 0.2 * (performance.now() - started);
    } catch (err) {
      // deliver never throws by contract; if it did, the entry is taken over after the lease.
      log.error({ err, messageId: message.messageId }, 'redis-streams delivery failed');
      slot.held -= 1;
      return;
    }
    const applied = new Promise<'ok' | 'stale'>((done) => {
      slot.decisions.push({
        json: decisionJson(slot, message, token, decision),
        done,
        messageId: message.messageId,
      });
      schedule(slot);
    });
    track(
      applied.then((result) => {
        if (result === 'stale') {
          log.warn(
            { messageId: message.messageId, deliveryId: message.id, action: decision.action },
            'stale lease: the message was taken over, decision ignored',
          );
        }
      }),
    );
  }

  function schedule(slot: Slot) {
    if (slot.cycles >= CYCLES_IN_FLIGHT) {
      slot.again = true;
      return;
    }
    slot.cycles += 1;
    setImmediate(() => void flush(slot));
  }

  async function cycle(args: Array<string | number>) {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await scripts.cycle(...args)) as [
          Array<'ok' | 'stale'>,
          Array<[string, string, unknown, unknown]>,
        ];
      } catch (err) {
        // A lost connection must not lose decisions: the lease fences a second try.
        if (attempt >= 5 || !isConnectionError(err) || !running) throw err;
        await sleep(200 * attempt);
      }
    }
  }

  async function flush(slot: Slot) {
    const decisions = slot.decisions.splice(0);
    const takes = slot.toTake.splice(0);
    // The entries this call takes or reads count as held until it answers.
    slot.held -= decisions.length + takes.length / 2;
    slot.fetching += takes.length / 2;
    // A share of the window per call: the calls in flight each carry a batch, out of step.
    const share = Math.min(ctx.batchSize, Math.ceil(windowOf(slot) / CYCLES_IN_FLIGHT));
    const fetch = running ? Math.min(share, room(slot)) : 0;
    slot.fetching += fetch;
    const asked = fetch + takes.length / 2;
    let more = false;
    const { keys } = slot;
    try {
      if (decisions.length > 0 || takes.length > 0 || fetch > 0) {
        const [results, taken] = await cycle([
          keys.stream,
          keys.delayed,
          keys.parked,
          keys.base,
          GROUP,
          ctx.consumerName,
          String(Date.now()),
          fetch,
          decisions.length,
          ...decisions.map((d) => d.json),
          ...takes,
        ]);
        decisions.forEach((d, i) => {
          d.done(results[i] ?? 'stale');
        });
        slot.held += taken.length;
        // It read all it asked for: the stream may hold more, worth a call of its own.
        more = fetch > 0 && taken.length >= fetch;
        for (const [, token, fields, history] of taken) slot.ready.push([token, fields, history]);
        pump(slot);
      }
    } catch (err) {
      log.error({ err }, 'redis-streams cycle failed; its entries are taken over after the lease');
      for (const d of decisions) d.done('stale');
    } finally {
      slot.fetching -= asked;
      slot.cycles -= 1;
      if (slot.again || slot.decisions.length > 0 || slot.toTake.length > 0 || more) {
        slot.again = false;
        schedule(slot);
      }
      nudge();
    }
  }

  function dispatch(slot: Slot, entries: Entry[]) {
    for (const [id, fields] of entries) {
      if (!fields) continue;
      const messageId = fieldsOf(fields)['m'];
      if (!messageId) continue;
      slot.held += 1;
      slot.toTake.push(id, messageId);
    }
    if (slot.toTake.length > 0) schedule(slot);
  }

  async function readLoop(reader: Redis) {
    while (running) {
      const open = [...slots.values()].filter((s) => room(s) > 0);
      // While Redis is away, wait for it instead of queueing reads a stop would have to wait out.
      if (open.length === 0 || reader.status !== 'ready') {
        await idle(ctx.blockMs);
        continue;
      }
      const count = Math.min(ctx.batchSize, Math.max(...open.map(room)));
      try {
        const reply = await reader.call('XREADGROUP', [
          'GROUP',
          GROUP,
          ctx.consumerName,
          'COUNT',
          count,
          'BLOCK',
          ctx.blockMs,
          'STREAMS',
          ...open.map((s) => s.keys.stream),
          ...open.map(() => '>'),
        ]);
        for (const [stream, entries] of streamsOf(reply)) {
          const slot = slots.get(stream.startsWith(keyPrefix) ? stream.slice(keyPrefix.length) : stream);
          if (slot) dispatch(slot, entries);
        }
      } catch (err) {
        if (!running) break;
        if (err instanceof Error && err.message.includes('NOGROUP')) {
          await Promise.all(open.map((s) => ensureGroup(s.keys))).catch(() => {});
          continue;
        }
        // While Redis is away the client logs the outage once; no line per attempt.
        if (reader.status === 'ready') log.warn({ err }, 'XREADGROUP failed');
        await idle(500);
      }
    }
  }

  let moveTimer: NodeJS.Timeout | undefined;
  async function moveDue(): Promise<number> {
    let earliest = Number.POSITIVE_INFINITY;
    await Promise.all(
      [...slots.values()].map(async ({ keys }) => {
        const [moved, next] = (await scripts.move(
          keys.stream,
          keys.delayed,
          keys.parked,
          keys.base,
          String(Date.now()),
          String(MOVE_LIMIT),
        )) as [number, string];
        if (moved >= MOVE_LIMIT) earliest = 0;
        else if (next !== '') earliest = Math.min(earliest, Number(next));
      }),
    );
    return earliest;
  }
  function scheduleMove(delayMs: number) {
    if (!running) return;
    moveTimer = setTimeout(async () => {
      let earliest = Number.POSITIVE_INFINITY;
      try {
        earliest = await moveDue();
      } catch (err) {
        if (redis.status === 'ready') log.warn({ err }, 'moving delayed messages failed');
      }
      scheduleMove(Math.max(1, Math.min(MOVE_POLL_MS, earliest - Date.now())));
    }, delayMs);
  }

  let claimTimer: NodeJS.Timeout | undefined;
  const claimEveryMs = Math.min(5000, Math.max(100, Math.floor(deps.leaseMs / 2)));
  async function claimIdle() {
    for (const slot of slots.values()) {
      const free = room(slot);
      if (free <= 0 || !running) continue;
      const reply = (await redis.xautoclaim(
        slot.keys.stream,
        GROUP,
        ctx.consumerName,
        deps.leaseMs,
        slot.cursor,
        'COUNT',
        Math.min(free, ctx.batchSize),
      )) as [string, Entry[], string[]?];
      slot.cursor = reply[0];
      dispatch(slot, reply[1]);
    }
  }
  function scheduleClaim() {
    if (!running) return;
    claimTimer = setTimeout(async () => {
      try {
        await claimIdle();
      } catch (err) {
        if (redis.status === 'ready') log.warn({ err }, 'XAUTOCLAIM failed');
      }
      scheduleClaim();
    }, claimEveryMs);
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
    nudge();
  });
  reader.connect().catch(() => {});
  const reading = readLoop(reader);
  scheduleMove(0);
  scheduleClaim();
  log.info({ namespaces: slots.size }, 'redis-streams consumer started');

  return {
    async stop() {
      if (!running) return;
      running = false;
      unsubscribe();
      clearTimeout(moveTimer);
      clearTimeout(claimTimer);
      nudge();
      await reading;
      // Taken messages still waiting for a slot are delivered too, before stop returns.
      while (inflight.size > 0) await Promise.all([...inflight]);
      await reloading;
      await closeRedis(reader);
    },
  };
}
