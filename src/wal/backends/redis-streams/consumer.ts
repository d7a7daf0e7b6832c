import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Namespace } from '../../namespaces/namespace.ts';
import type { Decision, StreamConsumer, StreamConsumerDeps, StreamMessage } from '../stream/contract.ts';
import { GROUP, historyKey, messageKey, type NsKeys, nsKeys } from './keys.ts';
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

/** A namespace served: `held` entries read and not finished, `active` of them delivering. */
type Slot = {
  ns: Namespace;
  keys: NsKeys;
  held: number;
  active: number;
  waiting: Array<() => void>;
  cursor: string;
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One consumer: a blocking XREADGROUP over every served stream (on its own duplicate
 * connection), a mover of due delayed messages, and an XAUTOCLAIM of entries idle longer than
 * the lease. Each entry is taken (fenced lease, order per key), delivered, then its decision
 * applied if the lease still holds.
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
      if (!prev) await ensureGroup(keys);
      if (prev) prev.ns = ns;
      next.set(keys.stream, prev ?? { ns, keys, held: 0, active: 0, waiting: [], cursor: '0-0' });
    }
    slots = next;
    nudge();
  }

  async function acquire(slot: Slot) {
    if (slot.active < slot.ns.consumerConcurrency) {
      slot.active += 1;
      return;
    }
    await new Promise<void>((resolve) => slot.waiting.push(resolve));
  }

  function release(slot: Slot) {
    slot.held -= 1;
    const next = slot.waiting.shift();
    if (next) next();
    else slot.active -= 1;
    nudge();
  }

  async function applyDecision(slot: Slot, message: StreamMessage, token: string, decision: Decision) {
    const { keys } = slot;
    const retention =
      decision.action === 'ack' ? slot.ns.deliveredRetentionSeconds : slot.ns.deadRetentionSeconds;
    const args = [
      keys.stream,
      keys.delayed,
      keys.parked,
      messageKey(keys.base, message.messageId),
      historyKey(keys.base, message.messageId),
      keys.base,
      GROUP,
      token,
      decision.action,
      String(Date.now()),
      String(decision.action === 'retry' ? Math.max(0, Math.ceil(decision.delayMs)) : 0),
      decision.action === 'ack' ? '' : decision.error,
      JSON.stringify(decision.targetsDone),
      String(retention),
      ...decision.attempts.map((a) => historyEntry(a, message.attempts)),
    ];
    // A lost connection must not lose the decision: try again a few times (the lease fences it).
    for (let attempt = 1; ; attempt++) {
      try {
        return (await scripts.apply(...args)) as 'ok' | 'stale';
      } catch (err) {
        if (attempt >= 5 || !isConnectionError(err)) throw err;
        await sleep(200 * attempt);
      }
    }
  }

  async function handle(slot: Slot, entryId: string, messageId: string) {
    await acquire(slot);
    try {
      const { keys } = slot;
      const token = randomUUID();
      const taken = (await scripts.take(
        keys.stream,
        keys.delayed,
        keys.parked,
        messageKey(keys.base, messageId),
        historyKey(keys.base, messageId),
        keys.base,
        GROUP,
        entryId,
        token,
        String(Date.now()),
      )) as [string, unknown?, unknown?];
      if (taken[0] !== 'taken') return;
      const message = messageOf(fieldsOf(taken[1]));
      const decision = await deps.deliver(slot.ns, message, historyOf(taken[2]));
      const result = await applyDecision(slot, message, token, decision);
      if (result === 'stale') {
        log.warn(
          { messageId, deliveryId: message.id, action: decision.action },
          'stale lease: the message was taken over, decision ignored',
        );
      }
    } catch (err) {
      log.error(
        { err, messageId, entryId },
        'redis-streams delivery failed; the entry is retried after the lease',
      );
    } finally {
      release(slot);
    }
  }

  function dispatch(slot: Slot, entries: Entry[]) {
    for (const [id, fields] of entries) {
      if (!fields) continue;
      const messageId = fieldsOf(fields)['m'];
      if (!messageId) continue;
      slot.held += 1;
      const job = handle(slot, id, messageId);
      inflight.add(job);
      void job.finally(() => inflight.delete(job));
    }
  }

  async function readLoop(reader: Redis) {
    while (running) {
      const open = [...slots.values()].filter((s) => s.held < s.ns.consumerConcurrency);
      if (open.length === 0) {
        await idle(ctx.blockMs);
        continue;
      }
      const count = Math.min(ctx.batchSize, Math.max(...open.map((s) => s.ns.consumerConcurrency - s.held)));
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
        log.warn({ err }, 'XREADGROUP failed');
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
        log.warn({ err }, 'moving delayed messages failed');
      }
      scheduleMove(Math.max(1, Math.min(MOVE_POLL_MS, earliest - Date.now())));
    }, delayMs);
  }

  let claimTimer: NodeJS.Timeout | undefined;
  const claimEveryMs = Math.min(5000, Math.max(100, Math.floor(deps.leaseMs / 2)));
  async function claimIdle() {
    for (const slot of slots.values()) {
      const free = slot.ns.consumerConcurrency - slot.held;
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
        log.warn({ err }, 'XAUTOCLAIM failed');
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
  // Reconnects on its own; say so once per error instead of ioredis's "unhandled error event".
  reader.on('error', (err: Error) => log.warn({ err: err.message }, 'redis-streams reader connection error'));
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
      await Promise.all([...inflight]);
      await reloading;
      await reader.quit().catch(() => reader.disconnect());
    },
  };
}
