import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../../wal/e2e/tcp-proxy.ts';
import { REDIS_COMMAND_TIMEOUT_MS } from '../redis-client.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../testing/index.ts';

const freshIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

// A Redis that took the connection and fell silent (stopped, overloaded, a network dropping
// packets): the client stays `ready`, so the rate limit kept asking it.
describe.skipIf(!testRedisUrl())('rate limits while Redis does not answer', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  beforeAll(async () => {
    const target = new URL(testRedisUrl()!);
    proxy = await startTcpProxy(Number(target.port), target.hostname);
    t = await startTestApp({
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      MERCATO_RATE_LIMIT_ANONYMOUS: '3',
    });
  });
  afterAll(async () => {
    proxy?.release();
    await t?.close();
    await proxy?.close();
  });

  it('counts in the process after a short wait, not the client’s command timeout per request', {
    timeout: 60_000,
  }, async () => {
    proxy.hold();
    try {
      const ip = freshIp();
      const started = performance.now();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const answer = await t.app.inject({
          method: 'POST',
          url: '/api/v1/auth/validate',
          remoteAddress: ip,
          payload: { token: 'nothing' },
        });
        statuses.push(answer.statusCode);
      }
      const tookMs = performance.now() - started;
      // Limited as ever (three of five, counted in the process)…
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      // …and not each waiting for Redis until its command timed out (5 × 5 s before).
      expect(tookMs).toBeLessThan(REDIS_COMMAND_TIMEOUT_MS);
    } finally {
      proxy.release();
    }
  });
});
