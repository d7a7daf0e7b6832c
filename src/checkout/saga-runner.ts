import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Order } from '../orders/index.ts';
import type { CheckoutDeps } from './deps.ts';
import { backward } from './saga-backward.ts';
import { type Begun, begin, type Started } from './saga-begin.ts';
import { MAX_ATTEMPTS, runContext, toCompensating } from './saga-context.ts';
import { forward } from './saga-forward.ts';
import { findSaga, type Saga, takeLease, updateSaga } from './saga-store.ts';
import { STEPS } from './steps.ts';
import type { CheckoutTrx } from './tables.ts';

export { MAX_ATTEMPTS } from './saga-context.ts';

export type RunResult =
  /**
   * The saga stopped where it stands (finished, waiting on the provider, paused or left to the
   * watchdog); `order`: the order as the run finished it (completed in this run).
   */
  | { state: 'stopped'; saga: Saga; order?: Order }
  /** Another runner holds it, or it is finished: nothing was done. */
  | { state: 'busy' };

/**
 * A saga whose lease the caller took in its own transaction (the order's creation), its order,
 * and where beginIn left it in that transaction.
 */
export type Held = { owner: string; saga: Saga; order: Order; begun: Begun };

export type SagaRunner = {
  /** Runs the saga as far as it can go now (taking its lease, unless `held` says the caller has it). */
  run(tenantId: string, sagaId: string, held?: Held): Promise<RunResult>;
  /**
   * In the transaction that made the saga (holding its lease) and its order: runs the steps that
   * need no call out and starts the first that does (run() goes on from there, with `held`).
   */
  beginIn(trx: CheckoutTrx, saga: Saga, order: Order): Promise<Begun>;
  /** Runs it soon in the background (watchdog, payment events, cancel); failures are logged. */
  kick(tenantId: string, sagaId: string, delayMs?: number): void;
  /** Waits for the runs in flight (shutdown). */
  close(): Promise<void>;
  /** How long a lease lasts: one step's timeout and a margin. */
  leaseMs: number;
};

const isTerminal = (saga: Saga) => saga.status !== 'running' && saga.status !== 'compensating';

/**
 * Drives sagas step by step. A run holds the saga's lease (one runner at a time, taken over when
 * it expires after a crash); each attempt is logged before its effect and its outcome logged with
 * the order's change in one transaction (saga-forward.ts); a failure moves the saga to
 * compensating, which undoes the steps in reverse (saga-backward.ts).
 */
export function createSagaRunner(deps: CheckoutDeps, logger: Logger): SagaRunner {
  const r = runContext(deps, logger);
  const runs = new Set<Promise<unknown>>();
  let closing = false;

  async function runOnce(tenantId: string, sagaId: string, held?: Held): Promise<RunResult> {
    const owner = held?.owner ?? randomUUID();
    const taken = held?.saga ?? (await r.tx(tenantId, (trx) => takeLease(trx, sagaId, owner, r.leaseMs)));
    if (!taken) return { state: 'busy' };
    let saga: Saga = taken;
    let prestarted: Started | undefined;
    let order: Order | undefined;
    if (held && held.begun !== 'paused') {
      if ('saga' in held.begun) ({ saga, order } = held.begun);
      else {
        prestarted = held.begun;
        saga = prestarted.c.saga;
      }
    }
    // Paused by the test hook where its creator left it: the lease is kept.
    let keepLease = held?.begun === 'paused';
    // Undoings that ended with money held again (saga-backward.ts) in this run.
    let givenBackAgain = 0;
    try {
      if (keepLease) return { state: 'stopped', saga };
      while (!isTerminal(saga)) {
        const current: Saga = saga;
        if (!prestarted && current.status === 'running' && current.cancelRequested) {
          const message = current.cancelRequested.reason;
          saga = await r.tx(tenantId, (trx) =>
            toCompensating(trx, current, { reason: 'cancelled', code: 'CANCELLED', message }),
          );
          continue;
        }
        if (current.status === 'compensating') {
          const undone = await backward(r, current);
          if (undone === 'stop') break;
          saga = undone;
          // Money held again each time: left to the watchdog (its next run tries again).
          if (saga.status === 'compensating' && ++givenBackAgain >= MAX_ATTEMPTS) break;
          continue;
        }
        const def = STEPS.find((s) => s.name === current.step)!;
        const result = await forward(r, current, def, prestarted);
        prestarted = undefined;
        if (result === 'stop' || result === 'paused') {
          // Paused (a test hook): the lease is kept, so only the watchdog resumes it, after it expires.
          keepLease = result === 'paused';
          break;
        }
        saga = result.saga;
        order = result.order;
        prestarted = result.next;
      }
    } finally {
      // A finished saga gave its lease back in its last transaction.
      if (!keepLease && !isTerminal(saga)) {
        await r
          .tx(tenantId, async (trx) => {
            const current = await findSaga(trx, { id: sagaId }, true);
            if (current?.leaseOwner === owner)
              await updateSaga(trx, sagaId, { leaseOwner: null, leaseUntil: null });
          })
          .catch((error) => logger.warn({ err: error, sagaId }, 'could not release a checkout lease'));
      }
    }
    if (isTerminal(saga)) return { state: 'stopped', saga, ...(order ? { order } : {}) };
    const final = await r.tx(tenantId, (trx) => findSaga(trx, { id: sagaId }));
    return { state: 'stopped', saga: final! };
  }

  /** Every run is tracked, so close() waits for those a request left running in the background. */
  function run(tenantId: string, sagaId: string, held?: Held): Promise<RunResult> {
    const p = runOnce(tenantId, sagaId, held);
    runs.add(p);
    void p.finally(() => runs.delete(p)).catch(() => {});
    return p;
  }

  return {
    run,
    leaseMs: r.leaseMs,
    async beginIn(trx, saga, order) {
      // The test hook's pause after a step the creator logged (validate).
      const done = STEPS[STEPS.findIndex((s) => s.name === saga.step) - 1];
      if (done && r.pauseAfter === done.name) return 'paused';
      return begin(r, trx, saga, STEPS.find((s) => s.name === saga.step)!, order);
    },
    kick(tenantId, sagaId, delayMs = 0) {
      if (closing) return;
      const p = sleep(delayMs)
        .then(() => (closing ? undefined : run(tenantId, sagaId)))
        .catch((error) => logger.error({ err: error, sagaId }, 'checkout saga run failed'))
        .finally(() => runs.delete(p));
      runs.add(p);
    },
    async close() {
      closing = true;
      await Promise.allSettled([...runs]);
    },
  };
}
