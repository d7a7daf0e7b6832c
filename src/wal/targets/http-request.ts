import http from 'node:http';
import https from 'node:https';
import { guardedLookup } from './ssrf-guard.ts';

const MAX_ERROR_BODY_BYTES = 4096;

export type HttpResponse = { status: number; headers: http.IncomingHttpHeaders; body: string };

/** Thrown when a request did not finish within its timeout. */
export class RequestTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/**
 * Keep-alive agents for webhooks. The guarded pair resolves hosts through the SSRF guard at
 * connect time; the open pair serves only hosts a namespace allowlisted. They never share
 * sockets, so a connection opened for an allowlisted host is never reused for a guarded one.
 */
export type WebhookAgents = {
  agentFor(protocol: 'http:' | 'https:', guarded: boolean): http.Agent;
  close(): void;
};

/** Creates the agents every HTTP target request goes through. */
export function createWebhookAgents(): WebhookAgents {
  const options = { keepAlive: true, maxSockets: 64 };
  const guarded = {
    'http:': new http.Agent({ ...options, lookup: guardedLookup }),
    'https:': new https.Agent({ ...options, lookup: guardedLookup }),
  };
  const open = { 'http:': new http.Agent(options), 'https:': new https.Agent(options) };
  return {
    agentFor: (protocol, isGuarded) => (isGuarded ? guarded : open)[protocol],
    close() {
      for (const agent of [...Object.values(guarded), ...Object.values(open)]) agent.destroy();
    },
  };
}

/**
 * POSTs body to url through agent; never follows redirects; reads at most 4 KiB of the answer.
 * timeoutMs covers connecting, the response and reading that body.
 */
export function postOnce(
  url: URL,
  agent: http.Agent,
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
            body: Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_BYTES).toString('utf8'),
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
