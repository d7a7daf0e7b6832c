import type { Order } from '../orders/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import type { CheckoutDeps } from './deps.ts';
import type { Saga } from './saga-store.ts';
import type { StepOutcome } from './step-outcome.ts';
import type { CheckoutTrx, StepName } from './tables.ts';

/** What a step works with: the saga, its order as it stands, the deadline's signal. */
export type StepContext = {
  deps: CheckoutDeps;
  saga: Saga;
  order: Order;
  signal: AbortSignal;
  meta: EventMeta;
  /** `saga:<id>`: who the inventory ledger, payments and order history name. */
  actor: string;
  /** What an attempt carries from its start (started) to its outcome (settle): the step's own. */
  carried?: unknown;
};

/**
 * A saga step (Medusa's workflow step): `local` makes its database effect in the transaction that
 * logs it (a step with no invoke is done there, with its log, all at once); invoke makes the
 * effect outside Mercato's database (the payment provider), idempotent by keys derived from the
 * saga, so running it again after a crash has no second effect; `started` and `invoked` are the
 * order's changes written in the transaction that logs the attempt's start and its outcome;
 * compensate undoes whatever the step may have done, judged from the real state (it may run after
 * a crash in the middle of invoke), and throws when it must be tried again.
 */
export type SagaStepDefinition = {
  name: StepName;
  /** In the transaction that starts the step (a failure fails the step there); idempotent. */
  local?(trx: CheckoutTrx, c: StepContext): Promise<StepOutcome>;
  /** Returns the order when it changed it. */
  started?(trx: CheckoutTrx, c: StepContext): Promise<Order | undefined>;
  invoke?(c: StepContext): Promise<StepOutcome>;
  /**
   * In the transaction that logs the attempt's outcome, before anything else: the outcome to log
   * (the provider's answer written, and judged, with it).
   */
  settle?(trx: CheckoutTrx, c: StepContext, outcome: StepOutcome): Promise<StepOutcome>;
  /** Returns the order when it changed it. */
  invoked?(trx: CheckoutTrx, c: StepContext, output: unknown): Promise<Order | undefined>;
  compensate(c: StepContext): Promise<unknown>;
  compensated?(trx: CheckoutTrx, c: StepContext, output: unknown): Promise<void>;
  /**
   * local and started read nothing of the order that the step before changes (only its id, lines
   * and totals): the run may start this step right behind the outcome of the one before, in the
   * same round trip (saga-forward.ts), with the order as that step found it.
   */
  startsOnStableOrder?: boolean;
  /**
   * The success (its output) settle will come to, told from what invoke carried (the provider's
   * answer), when it can be: the run writes the step's success together with settle's statements
   * and runs the transaction again the usual way if settle comes to anything else (saga-forward.ts).
   */
  foresee?(c: StepContext): { output: unknown } | undefined;
};
