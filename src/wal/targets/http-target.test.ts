import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HttpTarget } from '../namespaces/namespace.ts';
import { createHttpTarget } from './http-target.ts';
import { testDelivery, testNamespace } from './test-fixtures.ts';

const SECRET = `whsec_${Buffer.from('a test secret of thirty-two bytes').toString('base64')}`;

type Received = { headers: IncomingHttpHeaders; body: string; url: string };
type Answer = (res: import('node:http').ServerResponse) => void;

let server: Server;
let port: number;
let received: Received[] = [];
let answer: Answer = (res) => res.writeHead(204).end();

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        url: req.url ?? '',
      });
      answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const runner = createHttpTarget();
afterAll(() => runner.close());

afterEach(() => {
  received = [];
  answer = (res) => res.writeHead(204).end();
});

function target(overrides: Partial<HttpTarget> = {}): HttpTarget {
  return {
    type: 'http',
    name: 'hook',
    enabled: true,
    url: `http://127.0.0.1:${port}/hook`,
    secret: SECRET,
    timeoutMs: 2000,
    ...overrides,
  };
}

const allowLoopback = testNamespace({ allowedHosts: ['127.0.0.1'] });

describe('http target: signed CloudEvents', () => {
  it('posts a structured CloudEvent whose Standard Webhooks signature an independent implementation verifies', async () => {
    const delivery = testDelivery({ attempt: 3 });
    const result = await runner.deliver(
      allowLoopback,
      target({ headers: { 'x-team': 'billing' } }),
      delivery,
    );
    expect(result).toEqual({ outcome: 'delivered', statusCode: 204 });
    expect(received).toHaveLength(1);
    const { headers, body } = received[0]!;
    expect(headers['content-type']).toBe('application/cloudevents+json');
    expect(headers['user-agent']).toBe('Mercato-WAL/1');
    expect(headers['x-team']).toBe('billing');
    expect(headers['webhook-id']).toBe(delivery.messageId);

    const verified = new Webhook(SECRET).verify(body, headers as Record<string, string>);
    expect(verified).toEqual({
      specversion: '1.0',
      id: delivery.messageId,
      source: '/mercato/wal/orders',
      type: 'mercato.wal.orders',
      time: '2026-11-22T03:00:00.000Z',
      datacontenttype: 'application/json',
      data: delivery.payload,
      tenantid: delivery.tenantId,
      deliveryid: delivery.deliveryId,
      attempt: 3,
    });
  });

  it('fails verification when the body was tampered with', async () => {
    await runner.deliver(allowLoopback, target(), testDelivery());
    const { headers, body } = received[0]!;
    const tampered = body.replace('"total":1999', '"total":1');
    expect(tampered).not.toBe(body);
    expect(() => new Webhook(SECRET).verify(tampered, headers as Record<string, string>)).toThrow();
    const otherSecret = `whsec_${Buffer.from('another secret entirely, 32 byte').toString('base64')}`;
    expect(() => new Webhook(otherSecret).verify(body, headers as Record<string, string>)).toThrow();
  });

  it('takes the event type from a ce-type message header', async () => {
    await runner.deliver(
      allowLoopback,
      target(),
      testDelivery({ headers: { 'ce-type': 'com.shop.order.paid' } }),
    );
    expect(JSON.parse(received[0]!.body).type).toBe('com.shop.order.paid');
  });

  it('does not let target headers replace the signature headers', async () => {
    const headers = { 'Webhook-Signature': 'v1,forged', 'Content-Type': 'text/plain' };
    await runner.deliver(allowLoopback, target({ headers }), testDelivery());
    const got = received[0]!;
    expect(got.headers['content-type']).toBe('application/cloudevents+json');
    expect(() => new Webhook(SECRET).verify(got.body, got.headers as Record<string, string>)).not.toThrow();
  });
});

describe('http target: outcomes', () => {
  const cases: [string, Answer, Record<string, unknown>][] = [
    [
      '500 is retried',
      (res) => res.writeHead(500).end('boom'),
      { outcome: 'retry', statusCode: 500, error: 'HTTP 500: boom' },
    ],
    [
      '503 with Retry-After: 7 is retried after 7 s',
      (res) => res.writeHead(503, { 'retry-after': '7' }).end(),
      { outcome: 'retry', statusCode: 503, retryAfterMs: 7000 },
    ],
    ['429 is retried', (res) => res.writeHead(429).end(), { outcome: 'retry', statusCode: 429 }],
    ['408 is retried', (res) => res.writeHead(408).end(), { outcome: 'retry', statusCode: 408 }],
    [
      '410 disables the target',
      (res) => res.writeHead(410).end('gone'),
      { outcome: 'disable', statusCode: 410 },
    ],
    [
      '404 is dead',
      (res) => res.writeHead(404).end('no such hook'),
      { outcome: 'dead', statusCode: 404, error: 'HTTP 404: no such hook' },
    ],
    [
      '302 is dead: redirects are not followed',
      (res) => res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end(),
      { outcome: 'dead', statusCode: 302, error: 'HTTP 302: redirects are not followed' },
    ],
  ];
  for (const [name, respond, expected] of cases) {
    it(name, async () => {
      answer = respond;
      const result = await runner.deliver(allowLoopback, target(), testDelivery());
      expect(result).toMatchObject(expected);
      expect(received).toHaveLength(1);
    });
  }

  it('429 with an HTTP-date Retry-After is retried no sooner than that date', async () => {
    answer = (res) =>
      res.writeHead(429, { 'retry-after': new Date(Date.now() + 120_000).toUTCString() }).end();
    const result = await runner.deliver(allowLoopback, target(), testDelivery());
    expect(result.outcome).toBe('retry');
    const after = (result as { retryAfterMs?: number }).retryAfterMs!;
    expect(after).toBeGreaterThan(100_000);
    expect(after).toBeLessThanOrEqual(120_000);
  });

  it('caps Retry-After at one hour', async () => {
    answer = (res) => res.writeHead(503, { 'retry-after': '999999' }).end();
    const result = await runner.deliver(allowLoopback, target(), testDelivery());
    expect(result).toMatchObject({ outcome: 'retry', retryAfterMs: 3_600_000 });
  });

  it('reads at most 4 KiB of an error body', async () => {
    answer = (res) => res.writeHead(400).end('x'.repeat(100_000));
    const result = await runner.deliver(allowLoopback, target(), testDelivery());
    expect(result.outcome).toBe('dead');
    expect((result as { error: string }).error.length).toBeLessThanOrEqual(4096 + 'HTTP 400: '.length);
  });

  it('retries when the server never answers within timeoutMs', async () => {
    answer = () => {};
    const result = await runner.deliver(allowLoopback, target({ timeoutMs: 200 }), testDelivery());
    expect(result).toEqual({ outcome: 'retry', error: 'timed out after 200 ms' });
  });

  it('retries on a network error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await runner.deliver(
      allowLoopback,
      target({ url: `http://127.0.0.1:${closedPort}/` }),
      testDelivery(),
    );
    expect(result.outcome).toBe('retry');
    expect((result as { error: string }).error).toMatch(/ECONNREFUSED/);
  });
});

describe('http target: SSRF guard', () => {
  const guarded = testNamespace({ allowedHosts: [] });

  it('refuses 127.0.0.1 without the allowlist, before any byte reaches the server', async () => {
    const result = await runner.deliver(guarded, target(), testDelivery());
    expect(result).toEqual({ outcome: 'dead', error: 'SSRF guard refused 127.0.0.1 for host 127.0.0.1' });
    expect(received).toHaveLength(0);
  });

  it('refuses localhost on the address it resolves to, at connect time', async () => {
    const result = await runner.deliver(
      guarded,
      target({ url: `http://localhost:${port}/hook` }),
      testDelivery(),
    );
    expect(result.outcome).toBe('dead');
    expect((result as { error: string }).error).toMatch(
      /^SSRF guard refused (127\.0\.0\.1|::1) for host localhost$/,
    );
    expect(received).toHaveLength(0);
  });

  it('refuses localhost even when another host is allowlisted', async () => {
    const other = testNamespace({ allowedHosts: ['127.0.0.1'] });
    const result = await runner.deliver(
      other,
      target({ url: `http://localhost:${port}/hook` }),
      testDelivery(),
    );
    expect(result.outcome).toBe('dead');
    expect(received).toHaveLength(0);
  });

  // IP literals are refused before any connect is attempted: no traffic leaves the machine.
  for (const [url, address] of [
    ['http://10.0.0.1/hook', '10.0.0.1'],
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ['http://[::1]:1/hook', '::1'],
    ['http://[::ffff:127.0.0.1]:1/hook', '::ffff:7f00:1'],
    ['http://192.168.1.1/', '192.168.1.1'],
    ['http://[fd00::1]/', 'fd00::1'],
  ] as const) {
    it(`refuses ${url}`, async () => {
      const result = await runner.deliver(guarded, target({ url }), testDelivery());
      expect(result).toEqual({
        outcome: 'dead',
        error: `SSRF guard refused ${address} for host ${new URL(url).hostname}`,
      });
    });
  }

  it('delivers to a refused address when the namespace allowlists that exact host', async () => {
    const result = await runner.deliver(
      testNamespace({ allowedHosts: ['localhost'] }),
      target({ url: `http://localhost:${port}/hook` }),
      testDelivery(),
    );
    // localhost may resolve to ::1 first; the server listens on 127.0.0.1 only, and Node falls back.
    expect(result.outcome).toBe('delivered');
    expect(received).toHaveLength(1);
  });

  it('refuses a non-http URL', async () => {
    const result = await runner.deliver(allowLoopback, target({ url: 'file:///etc/passwd' }), testDelivery());
    expect(result).toMatchObject({ outcome: 'dead' });
  });
});
