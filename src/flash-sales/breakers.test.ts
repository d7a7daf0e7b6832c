import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { AppError } from '../platform/http/index.ts';
import { createBreakers } from './breakers.ts';

describe('the sale’s circuit breakers', () => {
  it('open after failures in a row: calls are refused with 503 at once, then one probe closes them again', async () => {
    const breakers = createBreakers({ threshold: 3, halfOpenAfterMs: 100 });
    let calls = 0;
    const failing = () => {
      calls += 1;
      return Promise.reject(new Error('database down'));
    };
    for (let i = 0; i < 3; i += 1)
      await expect(breakers.run('database', failing)).rejects.toThrow('database down');
    expect(breakers.state('database')).toBe('open');
    const refused = await breakers.run('database', failing).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('SERVICE_UNAVAILABLE');
    expect(calls).toBe(3);
    // The other breaker is not affected.
    expect(breakers.state('payments')).toBe('closed');
    await sleep(150);
    expect(await breakers.run('database', async () => 'ok')).toBe('ok');
    expect(breakers.state('database')).toBe('closed');
  });

  it('counts a saga that ended in a provider error or timeout as a payments failure, a declined card not', async () => {
    const breakers = createBreakers({ threshold: 2, halfOpenAfterMs: 60_000 });
    const declined = { failure: { reason: 'payment_declined' } };
    for (let i = 0; i < 5; i += 1) await breakers.run('payments', async () => declined);
    expect(breakers.state('payments')).toBe('closed');
    await breakers.run('payments', async () => ({ failure: { reason: 'payment_error' } }));
    await breakers.run('payments', async () => ({ failure: { reason: 'timeout' } }));
    expect(breakers.state('payments')).toBe('open');
  });

  it('does not count a refusal (a 4xx) as a failure: only errors of the service itself open it', async () => {
    const breakers = createBreakers({ threshold: 2, halfOpenAfterMs: 60_000 });
    const refusal = () => Promise.reject(new AppError('VALIDATION_FAILED', 'no such provider'));
    for (let i = 0; i < 5; i += 1)
      await expect(breakers.run('database', refusal)).rejects.toThrow('no such provider');
    expect(breakers.state('database')).toBe('closed');
    const broken = () => Promise.reject(new AppError('INTERNAL', 'it broke'));
    for (let i = 0; i < 2; i += 1) await expect(breakers.run('database', broken)).rejects.toThrow('it broke');
    expect(breakers.state('database')).toBe('open');
  });
});
