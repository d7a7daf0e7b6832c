import type { LeasedMessage } from '../backends/postgres/queue.ts';
import type { Outcome } from './deliver-message.ts';

/**
 * The engine's ledger: leased messages whose outcome is not recorded yet (in flight, or waiting
 * for the next cycle), and the outcomes of those whose delivery finished.
 */
export type HeldMessages = {
  /** Messages held, in flight or finished. */
  readonly size: number;
  /** Finished deliveries whose outcome waits for the next cycle. */
  readonly outcomes: number;
  get(id: string): LeasedMessage | undefined;
  values(): Iterable<LeasedMessage>;
  hold(message: LeasedMessage): void;
  /** Lets go of a message whose outcome will never be recorded (its lease expires). */
  drop(id: string): void;
  finish(id: string, outcome: Outcome): void;
  /** The outcomes gathered so far, for one cycle to record. */
  takeOutcomes(): Outcome[];
  /** Lets go of the messages whose outcome a cycle recorded (or lost). */
  forget(recorded: Outcome[]): void;
  /** Held messages still being delivered (their leases are renewed). */
  open(): LeasedMessage[];
};

export function createHeldMessages(): HeldMessages {
  /** Leased messages whose outcome is not recorded yet (in flight, or waiting for the next cycle). */
  const held = new Map<string, LeasedMessage>();
  /** Held messages whose delivery finished; their outcome waits in `outcomes`. */
  const finished = new Set<string>();
  let outcomes: Outcome[] = [];
  return {
    get size() {
      return held.size;
    },
    get outcomes() {
      return outcomes.length;
    },
    get: (id) => held.get(id),
    values: () => held.values(),
    hold(message) {
      held.set(message.id, message);
    },
    drop(id) {
      held.delete(id);
    },
    finish(id, outcome) {
      outcomes.push(outcome);
      finished.add(id);
    },
    takeOutcomes() {
      const taken = outcomes;
      outcomes = [];
      return taken;
    },
    forget(recorded) {
      for (const o of recorded) {
        const id = 'complete' in o ? o.complete.id : o.fail.id;
        held.delete(id);
        finished.delete(id);
      }
    },
    open: () => [...held.values()].filter((m) => !finished.has(m.id)),
  };
}
