import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Receiver, startReceiver } from '../e2e/receiver.ts';
import type { HttpTarget, Namespace } from '../namespaces/namespace.ts';
import type { Delivery, TargetResult } from '../targets/target-result.ts';
import { createCircuitBreakers } from './circuit-breakers.ts';

// The breakers on their own, in front of a real HTTP endpoint on loopback (the e2e side, with the
// namespace API and the metrics, is in fair-delivery.test.ts).

let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
});

afterAll(async () => {
  await receiver.close();
});

const namespace = {
  tenantId: '00000000-0000-4000-8000-000000000001',
  name: 'orders',
  retry: { strategy: 'fixed', baseDelayMs: 10, maxDelayMs: 10, maxAttempts: 5, jitter: 0 },
} as Namespace;
const delivery = { attempt: 1 } as Delivery;
const target = (url: string): HttpTarget => ({
  type: 'http',
  name: 'hook',
  enabled: true,
  url,
  secret: 'whsec_x',
  timeoutMs: 1000,
});

/** POSTs to the receiver and maps the answer as the HTTP target does (5xx retry, 4xx dead). */
async function post(url: string): Promise<TargetResult> {
  const response = await fetch(url, { method: 'POST', body: '{}' });
  await response.text();
  if (response.ok) return { outcome: 'delivered', statusCode: response.status };
  const outcome = response.status >= 500 ? 'retry' : 'dead';
  return { outcome, statusCode: response.status, error: `HTTP ${response.status}` };
}

describe('circuit breakers per HTTP target', () => {
  it('opens after the threshold of retryable failures, then refuses without a request until the pause ends', async () => {
    const breakers = createCircuitBreakers({ threshold: 3, halfOpenAfterMs: 60_000 });
    const hook = target(receiver.url);
    let requests = 0;
    const call = () => {
      requests++;
      return post(receiver.url);
    };
    // Non-retryable answers (4xx) are the message's fault, not the endpoint's: they never open it.
    receiver.failNext(5, 400);
    for (let i = 0; i < 5; i++) await breakers.run(namespace, hook, delivery, call);
    expect(breakers.view(namespace.tenantId, 'orders', 'hook').state).toBe('closed');

    receiver.failNext(3, 503);
    for (let i = 0; i < 3; i++) await breakers.run(namespace, hook, delivery, call);
    const open = breakers.view(namespace.tenantId, 'orders', 'hook');
    expect(open).toMatchObject({ state: 'open', failures: 3, lastError: 'HTTP 503' });
    expect(open.since).not.toBeNull();

    const before = requests;
    const refused = await breakers.run(namespace, hook, delivery, call);
    expect(requests).toBe(before);
    expect(refused).toMatchObject({ outcome: 'retry' });
    expect(refused.outcome === 'retry' && refused.error).toMatch(/^circuit open since .* after 3 failures/);
    // Not due again before the breaker may let a probe through.
    expect(refused.outcome === 'retry' && refused.retryAfterMs).toBeGreaterThan(50_000);
    expect(breakers.list()).toMatchObject([{ namespace: 'orders', target: 'hook', view: { state: 'open' } }]);
  });

  it('lets one probe through when half-open, refuses the others meanwhile, and closes on its success', async () => {
    const breakers = createCircuitBreakers({ threshold: 1, halfOpenAfterMs: 100 });
    const hook = target(receiver.url);
    receiver.failNext(1, 500);
    await breakers.run(namespace, hook, delivery, () => post(receiver.url));
    expect(breakers.view(namespace.tenantId, 'orders', 'hook').state).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, 150));

    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const probe = breakers.run(namespace, hook, delivery, async () => {
      await gate;
      return post(receiver.url);
    });
    expect(breakers.view(namespace.tenantId, 'orders', 'hook').state).toBe('half-open');
    let called = false;
    const other = await breakers.run(namespace, hook, delivery, async () => {
      called = true;
      return post(receiver.url);
    });
    expect(called).toBe(false);
    expect(other.outcome === 'retry' && other.error).toMatch(/^circuit open/);
    release();
    expect(await probe).toMatchObject({ outcome: 'delivered' });
    expect(breakers.view(namespace.tenantId, 'orders', 'hook')).toMatchObject({
      state: 'closed',
      failures: 0,
    });
  });

  it('starts a new, closed breaker when the target points at another URL', async () => {
    const breakers = createCircuitBreakers({ threshold: 1, halfOpenAfterMs: 60_000 });
    receiver.failNext(1, 500);
    await breakers.run(namespace, target(receiver.url), delivery, () => post(receiver.url));
    expect(breakers.view(namespace.tenantId, 'orders', 'hook').state).toBe('open');
    const moved = `${receiver.url}?v=2`;
    expect(await breakers.run(namespace, target(moved), delivery, () => post(moved))).toMatchObject({
      outcome: 'delivered',
    });
    expect(breakers.view(namespace.tenantId, 'orders', 'hook').state).toBe('closed');
  });
});
