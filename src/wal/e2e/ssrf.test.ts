import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

type Message = {
  state: string;
  attempts: number;
  lastError: string | null;
  history: { target: string; outcome: string; statusCode: number | null; error: string | null }[];
};

// What a tenant admin can make an HTTP target reach, end to end through the API: the operator
// opened one loopback port (MERCATO_WAL_PRIVATE_TARGETS=127.0.0.1:<port>) and nothing else.
describe('WAL HTTP targets and the host network', () => {
  let t: TestApp;
  let admin: Record<string, string>;
  let notOpened: Receiver;
  let opened: Server;
  let openedPort: number;
  let openedHits = 0;

  beforeAll(async () => {
    notOpened = await startReceiver();
    opened = createServer((request, response) => {
      request.resume().on('end', () => {
        openedHits += 1;
        if (request.url === '/big') response.writeHead(400).end('y'.repeat(4096));
        else response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => opened.listen(0, '127.0.0.1', resolve));
    openedPort = (opened.address() as AddressInfo).port;
    t = await startTestApp(
      { MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${openedPort}` },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    const shop = await createTestTenant(t, 'wal-ssrf');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t?.close();
    await notOpened?.close();
    opened?.closeAllConnections();
    await new Promise((resolve) => opened?.close(resolve));
  });

  const hook = (name: string, url: string, extra: Record<string, unknown> = {}) => ({
    name,
    type: 'http',
    url,
    secret: newSecret(),
    timeoutMs: 2000,
    ...extra,
  });
  const once = { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50, maxAttempts: 1, jitter: 0 };

  async function namespace(name: string, settings: Record<string, unknown>) {
    const response = await post(t.app, '/api/v1/wal/namespaces', { name, retry: once, ...settings }, admin);
    expect(response.statusCode, response.body).toBe(201);
  }

  /** Writes one message to the namespace and waits until it is delivered or dead. */
  async function settle(name: string): Promise<Message> {
    const written = await post(t.app, '/api/v1/wal/write', { namespace: name, payload: { n: 1 } }, admin);
    expect(written.statusCode, written.body).toBe(202);
    const { messageId } = written.json<{ messageId: string }>();
    return until(async () => {
      const response = await t.app.inject({
        url: `/api/v1/wal/messages/${messageId}?namespace=${name}`,
        headers: admin,
      });
      const message = response.json<Message>();
      return message.state === 'delivered' || message.state === 'dead' ? message : undefined;
    }, `${name} settled`);
  }

  it('refuses 127.0.0.1 that the namespace allowlists but the operator did not open: nothing reaches it', async () => {
    await namespace('allowlisted-loopback', {
      allowedHosts: ['127.0.0.1'],
      targets: [hook('hook', notOpened.url)],
    });
    const message = await settle('allowlisted-loopback');
    expect(message.state).toBe('dead');
    expect(message.attempts).toBe(1);
    expect(message.history).toEqual([
      expect.objectContaining({ target: 'hook', outcome: 'dead', statusCode: null }),
    ]);
    expect(message.history[0]!.error).toBe('destination refused: not a public address');
    expect(notOpened.received).toHaveLength(0);
  });

  it('refuses cloud metadata and IPv4-mapped loopback the namespace allowlists, in any notation', async () => {
    await namespace('allowlisted-metadata', {
      allowedHosts: ['169.254.169.254', '::ffff:169.254.169.254', '[::ffff:7f00:1]'],
      targets: [
        hook('metadata', 'http://169.254.169.254/latest/meta-data/'),
        hook('mapped-metadata', 'http://[::ffff:169.254.169.254]/latest/meta-data/'),
        hook('mapped-loopback', `http://[::ffff:7f00:1]:${new URL(notOpened.url).port}/hook`),
      ],
    });
    const message = await settle('allowlisted-metadata');
    expect(message.state).toBe('dead');
    const errors = Object.fromEntries(message.history.map((h) => [h.target, h.error]));
    expect(errors).toEqual({
      metadata: 'destination refused: not a public address',
      'mapped-metadata': 'destination refused: not a public address',
      'mapped-loopback': 'destination refused: not a public address',
    });
    expect(notOpened.received).toHaveLength(0);
  });

  it('delivers to the operator-opened 127.0.0.1:<port>', async () => {
    const before = openedHits;
    await namespace('opened', { targets: [hook('hook', `http://127.0.0.1:${openedPort}/ok`)] });
    const message = await settle('opened');
    expect(message.state).toBe('delivered');
    expect(openedHits).toBe(before + 1);
  });

  it('refuses the operator-opened host on another port', async () => {
    await namespace('other-port', { targets: [hook('hook', notOpened.url)] });
    const message = await settle('other-port');
    expect(message.state).toBe('dead');
    expect(message.lastError).toBe('hook: destination refused: not a public address');
    expect(notOpened.received).toHaveLength(0);
  });

  it('keeps at most 1 KiB of a 4 KiB response body in the attempt history', async () => {
    await namespace('big-answer', { targets: [hook('hook', `http://127.0.0.1:${openedPort}/big`)] });
    const message = await settle('big-answer');
    expect(message.state).toBe('dead');
    expect(message.history[0]).toMatchObject({ outcome: 'dead', statusCode: 400 });
    expect(message.history[0]!.error).toBe(`HTTP 400: ${'y'.repeat(1024)}`);
    expect(message.lastError).toBe(`hook: HTTP 400: ${'y'.repeat(1024)}`);
  });

  it.each([
    'Host',
    'content-length',
    'Transfer-Encoding',
    'Connection',
    'TE',
    'Upgrade',
    'Proxy-Authorization',
    'webhook-signature',
  ])('answers 400 VALIDATION_FAILED naming a %s header on create and update', async (header) => {
    const url = `http://127.0.0.1:${openedPort}/ok`;
    const body = { name: 'headers', targets: [hook('hook', url, { headers: { [header]: 'x' } })] };
    const created = await post(t.app, '/api/v1/wal/namespaces', body, admin);
    expect(created.statusCode, created.body).toBe(400);
    expect(created.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [expect.objectContaining({ pointer: `/targets/0/headers/${header}` })],
    });
    const name = `headers-${header.toLowerCase()}`;
    await namespace(name, { targets: [hook('hook', url)] });
    const updated = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/wal/namespaces/${name}`,
      headers: admin,
      payload: { targets: body.targets },
    });
    expect(updated.statusCode, updated.body).toBe(400);
    expect(updated.json().errors[0].pointer).toBe(`/targets/0/headers/${header}`);
  });

  it('accepts IPv6 literals in allowedHosts, with or without brackets, and narrows targets to them', async () => {
    await namespace('ipv6-hosts', {
      allowedHosts: ['::1', '[2001:DB8::1]'],
      targets: [hook('a', 'http://[::1]:9/'), hook('b', 'https://[2001:db8:0::1]/')],
    });
    const outside = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'ipv6-outside', allowedHosts: ['::1'], targets: [hook('a', 'http://[::2]/')] },
      admin,
    );
    expect(outside.statusCode).toBe(400);
    expect(outside.json().errors[0]).toMatchObject({ pointer: '/targets/0/url' });
    const malformed = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'bad-hosts', allowedHosts: ['[::1'] },
      admin,
    );
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().errors[0]).toMatchObject({ pointer: '/allowedHosts/0' });
  });
});
