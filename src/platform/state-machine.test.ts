import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from './http/errors.ts';
import { stateMachine } from './state-machine.ts';

const light = stateMachine('light', {
  red: ['green'],
  green: ['amber'],
  amber: ['red', 'off'],
  off: [],
});

describe('stateMachine', () => {
  it('allows exactly the transitions of its table', () => {
    expect(light.can('red', 'green')).toBe(true);
    expect(light.can('red', 'amber')).toBe(false);
    expect(light.can('off', 'red')).toBe(false);
    expect(light.next('amber')).toEqual(['red', 'off']);
    expect(light.isFinal('off')).toBe(true);
    expect(light.isFinal('red')).toBe(false);
  });

  it('refuses an illegal transition with 409 ILLEGAL_TRANSITION naming both states', () => {
    let error: unknown;
    try {
      light.assert('green', 'red');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({
      code: 'ILLEGAL_TRANSITION',
      status: 409,
      message: 'light cannot go from green to red',
      extras: { resource: 'light', from: 'green', to: 'red' },
    });
  });

  it('over any random walk, a state only ever moves to one its table lists', () => {
    const states = light.states;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...states), { maxLength: 40 }), (wanted) => {
        let state: (typeof states)[number] = 'red';
        for (const to of wanted) {
          const legal = light.next(state).includes(to);
          if (legal) {
            light.assert(state, to);
            state = to;
          } else {
            expect(() => light.assert(state, to)).toThrow(AppError);
          }
        }
        expect(states).toContain(state);
      }),
    );
  });
});
