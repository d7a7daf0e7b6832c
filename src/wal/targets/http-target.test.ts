import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../platform/index.ts';
import type { HttpTarget } from '../namespaces/namespace.ts';
import { createHttpTarget, type HttpTargetRunner, isAllowedHost } from './http-target.ts';
import { testDelivery, testNamespace } from './test-fixtures.ts';

const SECRET = `whsec_${Buffer.from('a test secret of thirty-two bytes').toString('base64')}`;

type Received = { headers: IncomingHttpHeaders; body: string; url: string };
type Answer = (res: import('node:http').ServerResponse) => void;

let server: Server;
let port: number;
let received: Received[] = [];
let answer: Answer = (res) => res.writeHead(204).end();
// The operator opened the test receiver (MERCATO_WAL_PRIVATE_TARGETS=127.0.0.1:<port>).
let runner: HttpTargetRunner;

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
  runner = createHttpTarget({ privateTargets: [`127.0.0.1:${port}`] });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

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

const allowLoopback = testNamespace();

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

  it('keeps at most 1 KiB of a 4 KiB error body', async () => {
    answer = (res) => res.writeHead(400).end('x'.repeat(4096));
    const result = await runner.deliver(allowLoopback, target(), testDelivery());
    expect(result).toEqual({ outcome: 'dead', statusCode: 400, error: `HTTP 400: ${'x'.repeat(1024)}` });
  });

  it('keeps a body with NUL bytes storable as PostgreSQL text', async () => {
    answer = (res) => res.writeHead(500).end('bad\u0000byte');
    const result = await runner.deliver(allowLoopback, target(), testDelivery());
    expect(result).toMatchObject({ outcome: 'retry', error: 'HTTP 500: bad\ufffdbyte' });
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
    const anyPort = createHttpTarget({ privateTargets: ['127.0.0.1'] });
    const result = await anyPort.deliver(
      allowLoopback,
      target({ url: `http://127.0.0.1:${closedPort}/` }),
      testDelivery(),
    );
    anyPort.close();
    expect(result.outcome).toBe('retry');
    // The code only: Node's message would name the address connected to.
    expect(result).toEqual({ outcome: 'retry', error: 'network error: ECONNREFUSED' });
  });
});

describe('http target: SSRF guard', () => {
  // No MERCATO_WAL_PRIVATE_TARGETS: nothing private is open, whatever a namespace allowlists.
  // What the guard found (address, reason) goes to the operator's log, never to the tenant.
  const logged: Record<string, unknown>[] = [];
  const closed = createHttpTarget({
    logger: { warn: (details) => logged.push(details as Record<string, unknown>) },
  });
  afterAll(() => closed.close());

  it('refuses 127.0.0.1 that the namespace allowlists, before any byte reaches the server', async () => {
    const result = await closed.deliver(
      testNamespace({ allowedHosts: ['127.0.0.1'] }),
      target(),
      testDelivery(),
    );
    expect(result).toEqual({ outcome: 'dead', error: 'destination refused: not a public address' });
    expect(received).toHaveLength(0);
  });

  it('refuses localhost on the address it resolves to, at connect time', async () => {
    const result = await closed.deliver(
      testNamespace({ allowedHosts: ['localhost'] }),
      target({ url: `http://localhost:${port}/hook` }),
      testDelivery(),
    );
    // Not an oracle: the tenant is not told which address localhost resolved to; the operator is.
    expect(result).toEqual({ outcome: 'dead', error: 'destination refused: not a public address' });
    expect(logged.at(-1)).toMatchObject({
      tenantId: testNamespace().tenantId,
      target: 'hook',
      host: 'localhost',
      address: expect.stringMatching(/^(127\.0\.0\.1|::1)$/),
      reason: expect.stringMatching(/^loopback/),
    });
    expect(received).toHaveLength(0);
  });

  // IP literals are refused before any connect is attempted: no traffic leaves the machine.
  for (const [url, address, reason] of [
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254', 'cloud metadata'],
    ['http://[::ffff:169.254.169.254]/latest/meta-data/', '::ffff:a9fe:a9fe', 'cloud metadata'],
    ['http://[fd00:ec2::254]/latest/meta-data/', 'fd00:ec2::254', 'cloud metadata'],
    ['http://[::ffff:7f00:1]:1/hook', '::ffff:7f00:1', 'IPv4-mapped 127.0.0.1, loopback'],
    ['http://[::ffff:127.0.0.1]:1/hook', '::ffff:7f00:1', 'IPv4-mapped 127.0.0.1, loopback'],
    ['http://[::1]:1/hook', '::1', 'loopback'],
    ['http://10.0.0.1/hook', '10.0.0.1', 'private'],
    ['http://0x7f.1/hook', '127.0.0.1', 'loopback'],
    ['http://[64:ff9b::7f00:1]/', '64:ff9b::7f00:1', 'NAT64 127.0.0.1, loopback'],
    ['http://[2002:7f00:1::1]/', '2002:7f00:1::1', '6to4 127.0.0.1, loopback'],
    [
      'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/',
      '2001:0:4136:e378:8000:63bf:80ff:fffe',
      'Teredo client 127.0.0.1, loopback',
    ],
    ['http://[fd00::1]/', 'fd00::1', 'unique local'],
  ] as const) {
    it(`refuses ${url} even when the namespace allowlists its host`, async () => {
      const host = new URL(url).hostname;
      const result = await closed.deliver(
        testNamespace({ allowedHosts: [host] }),
        target({ url }),
        testDelivery(),
      );
      expect(result).toEqual({ outcome: 'dead', error: 'destination refused: not a public address' });
      expect(logged.at(-1)).toMatchObject({ address, reason: expect.stringContaining(reason) });
    });
  }

  it('tells the tenant only that a host did not resolve, and the operator why (retried)', async () => {
    const unresolved = Object.assign(new Error('getaddrinfo ENOTFOUND db.internal.corp'), {
      code: 'ENOTFOUND',
    });
    const failing = createHttpTarget({
      logger: { warn: (details) => logged.push(details as Record<string, unknown>) },
      resolve: (_host, _options, callback) => callback(unresolved, []),
    });
    try {
      const result = await failing.deliver(
        testNamespace(),
        target({ url: 'http://db.internal.corp/hook' }),
        testDelivery(),
      );
      expect(result).toEqual({ outcome: 'retry', error: 'could not resolve host' });
      expect(logged.at(-1)).toMatchObject({ host: 'db.internal.corp', cause: unresolved.message });
    } finally {
      failing.close();
    }
  });

  it('delivers to an address the operator opened on that port', async () => {
    const result = await runner.deliver(testNamespace(), target(), testDelivery());
    expect(result).toEqual({ outcome: 'delivered', statusCode: 204 });
    expect(received).toHaveLength(1);
  });

  it('refuses an operator-opened address on another port', async () => {
    const otherPort = createHttpTarget({ privateTargets: ['127.0.0.1:1', 'localhost:1'] });
    try {
      for (const url of [`http://127.0.0.1:${port}/hook`, `http://localhost:${port}/hook`]) {
        const result = await otherPort.deliver(testNamespace(), target({ url }), testDelivery());
        expect(result).toEqual({ outcome: 'dead', error: 'destination refused: not a public address' });
      }
      expect(received).toHaveLength(0);
    } finally {
      otherPort.close();
    }
  });

  it('delivers to a host name the operator opened, resolved at connect time', async () => {
    const byName = createHttpTarget({ privateTargets: [`localhost:${port}`] });
    try {
      const result = await byName.deliver(
        testNamespace(),
        target({ url: `http://localhost:${port}/hook` }),
        testDelivery(),
      );
      // localhost may resolve to ::1 first; the server listens on 127.0.0.1 only, and Node falls back.
      expect(result.outcome).toBe('delivered');
      expect(received).toHaveLength(1);
    } finally {
      byName.close();
    }
  });

  it('refuses a host outside a non-empty allowedHosts even when the operator opened it', async () => {
    const result = await runner.deliver(
      testNamespace({ allowedHosts: ['hooks.example.com'] }),
      target(),
      testDelivery(),
    );
    expect(result).toEqual({
      outcome: 'dead',
      error: "host 127.0.0.1 is not in the namespace's allowedHosts",
    });
    expect(received).toHaveLength(0);
  });

  it('matches allowedHosts whatever the notation of an IPv6 or IPv4 address', () => {
    const ns = testNamespace({ allowedHosts: ['[::FFFF:127.0.0.1]', '0:0::1', 'Hooks.Example.com'] });
    expect(isAllowedHost(ns, new URL('http://[::ffff:7f00:1]/'))).toBe(true);
    expect(isAllowedHost(ns, new URL('http://[::1]:8080/'))).toBe(true);
    expect(isAllowedHost(ns, new URL('https://hooks.example.COM./'))).toBe(true);
    expect(isAllowedHost(ns, new URL('http://[::2]/'))).toBe(false);
  });

  it('drops reserved headers a namespace stored before they were refused', async () => {
    const headers = {
      Host: 'internal.example',
      'Proxy-Authorization': 'Basic eA==',
      'Webhook-Id': 'forged',
      'x-ok': '1',
    };
    const result = await runner.deliver(testNamespace(), target({ headers }), testDelivery());
    expect(result.outcome).toBe('delivered');
    const got = received[0]!.headers;
    expect(got.host).toBe(`127.0.0.1:${port}`);
    expect(got['proxy-authorization']).toBeUndefined();
    expect(got['webhook-id']).toBe(testDelivery().messageId);
    expect(got['x-ok']).toBe('1');
  });

  it('refuses a bad MERCATO_WAL_PRIVATE_TARGETS entry when it is built', () => {
    expect(() => createHttpTarget({ privateTargets: ['127.0.0.1:99999'] })).toThrow(ConfigError);
  });

  it('refuses a non-http URL', async () => {
    const result = await runner.deliver(allowLoopback, target({ url: 'file:///etc/passwd' }), testDelivery());
    expect(result).toMatchObject({ outcome: 'dead' });
  });
});
