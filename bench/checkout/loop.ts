/**
 * Closed-loop customers for `npm run bench:checkout`: each of `clients` runs one operation (a
 * whole checkout, or one saga) after another until the time is up, a count is reached, or there is
 * nothing left to do; every outcome is tallied (completed or not, and why not) and timed.
 */
import { loadavg } from 'node:os';
import { quantileOf } from '../wal-common.ts';

/** One operation: whether it completed, how long it took, per call when it is several calls. */
export type Outcome = { ok: boolean; ms: number; problem?: string; calls?: number[] };

export type Tally = {
  name: string;
  clients: number;
  /** From the first start to the last answer. */
  seconds: number;
  attempts: number;
  completed: number;
  /** Attempts that did not complete, by what went wrong (`POST /orders: 202 payment_processing`…). */
  problems: Record<string, number>;
  /** Completed operations per second. */
  rate: number;
  /** Of the completed operations, ms. */
  p50: number;
  p99: number;
  /** Per call of a completed operation (when its outcome times its calls), ms. */
  calls?: Array<{ p50: number; p99: number }>;
  /** When it stopped before its time because there was nothing left to do (prepared carts). */
  ranOut?: boolean;
};

const round = (ms: number) => Math.round(ms * 100) / 100;
const quantiles = (values: number[]) => {
  const sorted = Float64Array.from(values).sort();
  return { p50: round(quantileOf(sorted, 0.5)), p99: round(quantileOf(sorted, 0.99)) };
};

export type LoopOptions = {
  name: string;
  clients: number;
  /** Stop starting operations after this many seconds… */
  seconds?: number;
  /** …or after this many operations in all. */
  count?: number;
  /** The next operation of client `client`, or undefined when there is none left. */
  next: (client: number) => (() => Promise<Outcome>) | undefined;
  /** Print the tally (default true). */
  quiet?: boolean;
};

export async function loop(options: LoopOptions): Promise<Tally> {
  const started = performance.now();
  const deadline =
    options.seconds === undefined ? Number.POSITIVE_INFINITY : started + options.seconds * 1000;
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  let attempts = 0;
  let last = started;
  let ranOut = false;
  const done: Outcome[] = [];
  const problems: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: options.clients }, async (_, client) => {
      while (performance.now() < deadline && attempts < limit) {
        const op = options.next(client);
        if (!op) {
          ranOut = true;
          return;
        }
        attempts += 1;
        const began = performance.now();
        const outcome = await op().catch(
          (error): Outcome => ({
            ok: false,
            ms: performance.now() - began,
            problem: String(error instanceof Error ? error.message : error)
              .split('\n')[0]!
              .slice(0, 120),
          }),
        );
        last = performance.now();
        if (outcome.ok) done.push(outcome);
        else {
          const problem = outcome.problem ?? 'failed';
          problems[problem] = (problems[problem] ?? 0) + 1;
        }
      }
    }),
  );
  const seconds = Math.max(0.001, (last - started) / 1000);
  const width = done[0]?.calls?.length ?? 0;
  const tally: Tally = {
    name: options.name,
    clients: options.clients,
    seconds: round(seconds),
    attempts,
    completed: done.length,
    problems,
    rate: Math.round((done.length / seconds) * 10) / 10,
    ...quantiles(done.map((o) => o.ms)),
    ...(width > 0
      ? {
          calls: Array.from({ length: width }, (_, i) =>
            quantiles(done.map((o) => o.calls?.[i] ?? Number.NaN)),
          ),
        }
      : {}),
    ...(ranOut ? { ranOut } : {}),
  };
  if (!options.quiet) {
    const failed = Object.entries(problems)
      .map(([problem, n]) => `${problem} ×${n}`)
      .join(', ');
    console.log(
      `${tally.name}: ${tally.completed}/${tally.attempts} completed in ${tally.seconds} s, ${tally.rate}/s` +
        ` (load ${loadavg()[0]!.toFixed(1)}), p50 ${tally.p50} p99 ${tally.p99} ms${failed ? `; not completed: ${failed}` : ''}` +
        `${ranOut ? '; ran out of prepared carts' : ''}`,
    );
  }
  return tally;
}
