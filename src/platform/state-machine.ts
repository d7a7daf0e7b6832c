import { AppError } from './http/errors.ts';

/** Each state and the states it may move to; a state with none is final. */
export type Transitions<S extends string> = { readonly [K in S]: readonly S[] };

export type StateMachine<S extends string> = {
  readonly states: readonly S[];
  /** Whether `from` may move to `to`. */
  can(from: S, to: S): boolean;
  /** Throws 409 ILLEGAL_TRANSITION naming both states unless `from` may move to `to`. */
  assert(from: S, to: S): void;
  /** The states `from` may move to. */
  next(from: S): readonly S[];
  /** Whether nothing follows `state`. */
  isFinal(state: S): boolean;
};

/**
 * A typed transition table (Vendure's finite-state-machine, without hooks): `resource` names
 * what moves ("order", "payment") in the error an illegal transition answers with.
 */
export function stateMachine<S extends string>(
  resource: string,
  transitions: Transitions<S>,
): StateMachine<S> {
  const states = Object.keys(transitions) as S[];
  const allowed = new Map(states.map((s) => [s, new Set<S>(transitions[s])]));
  const can = (from: S, to: S) => allowed.get(from)?.has(to) ?? false;
  return {
    states,
    can,
    assert(from, to) {
      if (!can(from, to)) {
        throw new AppError('ILLEGAL_TRANSITION', `${resource} cannot go from ${from} to ${to}`, {
          resource,
          from,
          to,
        });
      }
    },
    next: (from) => transitions[from] ?? [],
    isFinal: (state) => (transitions[state]?.length ?? 0) === 0,
  };
}
