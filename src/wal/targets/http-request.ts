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

/** Sockets one tenant may hold open to one host and port (its own budget, not shared). */
export const MAX_SOCKETS_PER_TENANT_HOST = 64;
/** Tenants whose agents are kept; past it the least recently used idle ones are dropped. */
export const MAX_TENANT_AGENTS = 1000;

/**
 * Keep-alive agents for webhooks, one pair per tenant: each tenant has its own budget of
 * MAX_SOCKETS_PER_TENANT_HOST sockets per host and port, so one tenant's endpoint that hangs on
 * a shared host (a SaaS webhook host) cannot take the sockets another tenant delivers through.
 * They carry no `lookup` of their own: every request brings the SSRF guard's, so each new
 * connection is checked where it gets its address. A kept-alive socket is reused only for the
 * same tenant, host and port, which the same guard allowed.
 */
export type WebhookAgents = {
  agentFor(tenantId: string, protocol: 'http:' | 'https:'): http.Agent;
  close(): void;
};

type TenantAgents = Record<'http:' | 'https:', http.Agent>;

const busy = (agent: http.Agent): boolean =>
  Object.keys(agent.sockets).length > 0 || Object.keys(agent.requests).length > 0;

/**
 * Creates the agents every HTTP target request goes through. At most maxTenants tenants keep
 * agents: past that, the least recently used ones with no request in flight are destroyed
 * (their idle keep-alive sockets closed); a busy one stays until it is idle.
 */
export function createWebhookAgents(maxTenants = MAX_TENANT_AGENTS): WebhookAgents {
  const options = { keepAlive: true, maxSockets: MAX_SOCKETS_PER_TENANT_HOST };
  // Map order is use order: the first entries are the least recently used.
  const byTenant = new Map<string, TenantAgents>();
  const destroy = (agents: TenantAgents) => {
    for (const agent of Object.values(agents)) agent.destroy();
  };
  const evict = (keep: string) => {
    for (const [tenantId, agents] of byTenant) {
      if (byTenant.size <= maxTenants) return;
      if (tenantId === keep || busy(agents['http:']) || busy(agents['https:'])) continue;
      byTenant.delete(tenantId);
      destroy(agents);
    }
  };
  return {
    agentFor(tenantId, protocol) {
      let agents = byTenant.get(tenantId);
      if (agents) byTenant.delete(tenantId);
      else agents = { 'http:': new http.Agent(options), 'https:': new https.Agent(options) };
      byTenant.set(tenantId, agents);
      evict(tenantId);
      return agents[protocol];
    },
    close() {
      for (const agents of byTenant.values()) destroy(agents);
      byTenant.clear();
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
