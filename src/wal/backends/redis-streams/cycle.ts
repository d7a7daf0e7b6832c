import type { Decision, StreamMessage } from '../stream/contract.ts';
import { type ConsumerState, type CycleResult, room, type Slot, windowOf } from './consumer-state.ts';
import { GROUP } from './keys.ts';
import { type Entry, fieldsOf, historyEntry, historyOf, isConnectionError, messageOf } from './message.ts';

// The consumer's cycle: read entries are taken (fenced lease, order per key) and finished
// deliveries' decisions applied by one `cycle` script call per namespace per tick, which also
// reads and takes the next entries.

/**
 * Cycle calls in flight per namespace: while Redis runs one, this process delivers what the last
 * one took and gathers decisions for the next. Decisions are fenced by lease token, so the order
 * in which two calls land does not matter.
 */
const CYCLES_IN_FLIGHT = 2;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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

/** Starts deliveries of taken messages while fewer than consumerConcurrency run. */
function pump(state: ConsumerState, slot: Slot) {
  while (slot.active < slot.ns.consumerConcurrency && slot.ready.length > 0) {
    const [token, fields, history] = slot.ready.shift()!;
    slot.active += 1;
    state.track(
      deliver(state, slot, token, fields, history).finally(() => {
        slot.active -= 1;
        pump(state, slot);
      }),
    );
  }
}

/**
 * Delivers one taken message and queues its decision for the next cycle. The delivery slot is
 * free again once the handler is done: the message stays held (leased) until the cycle has
 * applied the decision, and the next message of its key is released only then.
 */
async function deliver(state: ConsumerState, slot: Slot, token: string, fields: unknown, history: unknown) {
  const { deps, log } = state;
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
  const applied = new Promise<CycleResult>((done) => {
    slot.decisions.push({
      json: decisionJson(slot, message, token, decision),
      done,
      messageId: message.messageId,
    });
    schedule(state, slot);
  });
  state.track(
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

export function schedule(state: ConsumerState, slot: Slot) {
  if (slot.cycles >= CYCLES_IN_FLIGHT) {
    slot.again = true;
    return;
  }
  slot.cycles += 1;
  setImmediate(() => void flush(state, slot));
}

async function cycle(state: ConsumerState, args: Array<string | number>) {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await state.ctx.scripts.cycle(...args)) as [
        CycleResult[],
        Array<[string, string, unknown, unknown]>,
        string?,
      ];
    } catch (err) {
      // A lost connection must not lose decisions: the lease fences a second try.
      if (attempt >= 5 || !isConnectionError(err) || !state.running) throw err;
      await sleep(200 * attempt);
    }
  }
}

async function flush(state: ConsumerState, slot: Slot) {
  const { ctx, log } = state;
  const decisions = slot.decisions.splice(0);
  const takes = slot.toTake.splice(0);
  // The entries this call takes or reads count as held until it answers.
  slot.held -= decisions.length + takes.length / 2;
  slot.fetching += takes.length / 2;
  // A share of the window per call: the calls in flight each carry a batch, out of step.
  const share = Math.min(ctx.batchSize, Math.ceil(windowOf(state, slot) / CYCLES_IN_FLIGHT));
  const fetch = state.running && !slot.dropped ? Math.min(share, room(state, slot)) : 0;
  slot.fetching += fetch;
  const asked = fetch + takes.length / 2;
  let more = false;
  const { keys } = slot;
  try {
    if (decisions.length > 0 || takes.length > 0 || fetch > 0) {
      const [results, taken, dropped] = await cycle(state, [
        keys.stream,
        keys.delayed,
        keys.parked,
        keys.dropped,
        keys.base,
        GROUP,
        ctx.consumerName,
        String(Date.now()),
        fetch,
        decisions.length,
        slot.ns.createdAt,
        ...decisions.map((d) => d.json),
        ...takes,
      ]);
      // Dropped (deleted here, this consumer not yet told): nothing applied nor read; its slot
      // is left out until the reload.
      if (dropped) slot.dropped = true;
      decisions.forEach((d, i) => {
        d.done(results[i] ?? 'stale');
      });
      slot.held += taken.length;
      // It read all it asked for: the stream may hold more, worth a call of its own.
      more = fetch > 0 && taken.length >= fetch;
      for (const [, token, fields, history] of taken) slot.ready.push([token, fields, history]);
      pump(state, slot);
    }
  } catch (err) {
    log.error({ err }, 'redis-streams cycle failed; its entries are taken over after the lease');
    for (const d of decisions) d.done('stale');
  } finally {
    slot.fetching -= asked;
    slot.cycles -= 1;
    if (slot.again || slot.decisions.length > 0 || slot.toTake.length > 0 || more) {
      slot.again = false;
      schedule(state, slot);
    }
    state.nudge();
  }
}

export function dispatch(state: ConsumerState, slot: Slot, entries: Entry[]) {
  for (const [id, fields] of entries) {
    if (!fields) continue;
    const messageId = fieldsOf(fields)['m'];
    if (!messageId) continue;
    slot.held += 1;
    slot.toTake.push(id, messageId);
  }
  if (slot.toTake.length > 0) schedule(state, slot);
}
