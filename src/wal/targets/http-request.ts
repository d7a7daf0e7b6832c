import http from 'node:http';
import https from 'node:https';
import type { GuardedLookup } from './ssrf-guard.ts';

/** How much of an answer's body is read and kept (in the attempt history, as the error). */
export const MAX_ERROR_BODY_BYTES = 1024;

export type HttpResponse = { status: number; headers: http.IncomingHttpHeaders; body: string };

// Framing, hop-by-hop and proxy headers, and the Standard Webhooks ones the signature stands on.
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
]);

/** True for a header a target may not set: Host, framing and hop-by-hop headers, Proxy-*, Webhook-*. */
export function isReservedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED_HEADERS.has(lower) || lower.startsWith('proxy-') || lower.startsWith('webhook-');
}

// PostgreSQL text cannot hold NUL; a body cut mid-character ends in U+FFFD.
const storable = (bytes: Buffer): string => bytes.toString('utf8').replaceAll('\u0000', '\ufffd');

/** Thrown when a request did not finish within its timeout. */
export class RequestTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/**
 * Keep-alive agents for webhooks. They carry no `lookup` of their own: every request brings the
 * SSRF guard's, so each new connection is checked where it gets its address. A kept-alive
 * socket is reused only for the same host and port, which the same guard allowed.
 */
export type WebhookAgents = {
  agentFor(protocol: 'http:' | 'https:'): http.Agent;
  close(): void;
};

/** Creates the agents every HTTP target request goes through. */
export function createWebhookAgents(): WebhookAgents {
  const options = { keepAlive: true, maxSockets: 64 };
  const agents = { 'http:': new http.Agent(options), 'https:': new https.Agent(options) };
  return {
    agentFor: (protocol) => agents[protocol],
    close() {
      for (const agent of Object.values(agents)) agent.destroy();
    },
  };
}

/**
 * POSTs body to url through agent, resolving the host with lookup (the SSRF guard's); never
 * follows redirects; reads at most 1 KiB of the answer. timeoutMs covers connecting, the
 * response and reading that body.
 */
export function postOnce(
  url: URL,
  agent: http.Agent,
  lookup: GuardedLookup,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<HttpResponse> {
  const send = url.protocol === 'https:' ? https.request : http.request;
  const controller = new AbortController();
  return new Promise<HttpResponse>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(timedOut ? new RequestTimeoutError(timeoutMs) : error);
    };
    const request = send(
      url,
      {
        method: 'POST',
        agent,
        lookup,
        signal: controller.signal,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const finish = () => {
          clearTimeout(timer);
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: storable(Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES)),
          });
        };
        response.on('data', (chunk: Buffer) => {
          if (size >= MAX_ERROR_BODY_BYTES) return;
          chunks.push(chunk);
          size += chunk.length;
          if (size >= MAX_ERROR_BODY_BYTES) {
            response.destroy();
            finish();
          }
        });
        response.on('end', finish);
        response.on('error', fail);
      },
    );
    request.on('error', fail);
    request.end(body);
  });
}
