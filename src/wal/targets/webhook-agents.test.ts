import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../e2e/receiver.ts';
import { createWebhookAgents, MAX_SOCKETS_PER_TENANT_HOST } from './http-request.ts';
import { createHttpTarget, type HttpTargetRunner } from './http-target.ts';
import type { TargetResult } from './target-result.ts';
import { testDelivery, testNamespace } from './test-fixtures.ts';

// One host and port shared by two tenants (a SaaS webhook host): /hang never answers, /ok does.
const SECRET = `whsec_${Buffer.from('a test secret of thirty-two bytes').toString('base64')}`;
const TENANT_A = '00000000-0000-7000-8000-00000000000a';
const TENANT_B = '00000000-0000-7000-8000-00000000000b';

let server: Server;
let port: number;
let runner: HttpTargetRunner;
const hanging: ServerResponse[] = [];
let released = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.url === '/hang' && !released) hanging.push(res);
    else res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  runner = createHttpTarget({ privateTargets: [`127.0.0.1:${port}`] });
});

afterAll(async () => {
  runner.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const target = (path: string) => ({
  type: 'http' as const,
  name: 'hook',
  enabled: true,
  url: `http://127.0.0.1:${port}${path}`,
  secret: SECRET,
  timeoutMs: 120_000,
});

describe('webhook agents: a socket budget per tenant', () => {
  it("delivers tenant B's webhook while tenant A holds every socket it may open to the same host and port", async () => {
    const a = testNamespace({ tenantId: TENANT_A });
    // One more than A's budget: the last one waits for a socket of A's own.
    const stuck: Promise<TargetResult>[] = [];
    for (let i = 0; i <= MAX_SOCKETS_PER_TENANT_HOST; i++) {
      stuck.push(runner.deliver(a, target('/hang'), testDelivery({ tenantId: TENANT_A })));
    }
    await until(() => hanging.length === MAX_SOCKETS_PER_TENANT_HOST, 'tenant A to hold its sockets');

    const b = testNamespace({ tenantId: TENANT_B });
    const result = await runner.deliver(b, target('/ok'), testDelivery({ tenantId: TENANT_B }));
    expect(result).toEqual({ outcome: 'delivered', statusCode: 204 });
    // A's budget is still full: its extra request never reached the server.
    expect(hanging).toHaveLength(MAX_SOCKETS_PER_TENANT_HOST);

    released = true;
    for (const res of hanging) res.writeHead(204).end();
    const outcomes = await Promise.all(stuck);
    expect(outcomes.every((outcome) => outcome.outcome === 'delivered')).toBe(true);
  });

  it('drops the least recently used idle tenant past the cap, keeping the others', () => {
    const agents = createWebhookAgents(2);
    const first = agents.agentFor('a', 'http:');
    const second = agents.agentFor('b', 'http:');
    expect(agents.agentFor('a', 'http:')).toBe(first);
    agents.agentFor('c', 'http:');
    expect(agents.agentFor('a', 'http:')).toBe(first);
    expect(agents.agentFor('b', 'http:')).not.toBe(second);
    agents.close();
  });
});
