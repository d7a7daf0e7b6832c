import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../testing/index.ts';

/** Writes raw bytes to the server and reads everything it answers until it closes the connection. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.write(request);
  });
}

function parse(answer: string) {
  const [head = '', body = ''] = answer.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return {
    status: Number(statusLine.split(' ')[1]),
    headers,
    body: JSON.parse(body) as Record<string, unknown>,
  };
}

describe("what Node's HTTP parser refuses", () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp();
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    port = Number(new URL(address).port);
  });
  afterAll(() => t?.close());

  it('answers headers over the size limit with a 431 HEADERS_TOO_LARGE problem and closes', async () => {
    const answer = parse(
      await exchange(port, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`),
    );
    expect(answer.status).toBe(431);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.headers['connection']).toBe('close');
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    expect(answer.body).toMatchObject({
      type: 'urn:mercato:problem:headers-too-large',
      status: 431,
      code: 'HEADERS_TOO_LARGE',
      requestId: answer.headers['x-request-id'],
    });
  });

  it('answers a malformed request line or header with a 400 BAD_REQUEST problem and closes', async () => {
    for (const request of [
      'NOT HTTP AT ALL\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n',
      'GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
    ]) {
      const answer = parse(await exchange(port, request));
      expect(answer.status, request).toBe(400);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.headers['connection']).toBe('close');
      expect(answer.body).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    }
  });

  it('still serves a well-formed request on the same server', async () => {
    const answer = await exchange(port, 'GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer.startsWith('HTTP/1.1 200')).toBe(true);
  });
});
