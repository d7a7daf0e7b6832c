import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Received = { body: string; headers: IncomingHttpHeaders; at: number; event: CloudEvent };
export type CloudEvent = { id: string; data: unknown; [field: string]: unknown };

/**
 * A webhook endpoint on 127.0.0.1: records every raw body and its headers, answers 200, or
 * `failNext(n, status)` answers status to the next n requests; `hang(predicate)` never answers
 * the requests it matches (until `release()`).
 */
export type Receiver = {
  url: string;
  received: Received[];
  /** Requests held open by hang(). */
  hung(): number;
  failNext(n: number, status: number): void;
  hang(predicate: ((event: CloudEvent) => boolean) | undefined): void;
  ids(): Set<string>;
  close(): Promise<void>;
};

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  let failures = 0;
  let failStatus = 500;
  let hanging: ((event: CloudEvent) => boolean) | undefined;
  let hungCount = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let event: CloudEvent;
      try {
        event = JSON.parse(body) as CloudEvent;
      } catch {
        event = { id: '', data: body };
      }
      if (hanging?.(event)) {
        hungCount += 1;
        return; // never answers: the sender times out or dies
      }
      if (failures > 0) {
        failures -= 1;
        response.writeHead(failStatus).end('failing on purpose');
        return;
      }
      received.push({ body, headers: request.headers, at: Date.now(), event });
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    hung: () => hungCount,
    failNext(n, status) {
      failures = n;
      failStatus = status;
    },
    hang(predicate) {
      hanging = predicate;
    },
    ids: () => new Set(received.map((r) => r.event.id)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A Standard Webhooks secret: whsec_ + base64 of 32 random bytes. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Polls check() until it returns a truthy value (at most timeoutMs); fails with the last value. */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last as NonNullable<T>;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}
