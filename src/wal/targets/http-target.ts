import { isIP } from 'node:net';
import type { HttpTarget, Namespace } from '../namespaces/namespace.ts';
import { toCloudEvent } from './cloud-event.ts';
import { createWebhookAgents, type HttpResponse, postOnce, RequestTimeoutError } from './http-request.ts';
import { parseRetryAfter } from './retry-after.ts';
import { isRefusedAddress, SsrfRefusedError } from './ssrf-guard.ts';
import type { Delivery, TargetResult } from './target-result.ts';
import { signWebhook } from './webhook-signature.ts';

export type HttpTargetRunner = {
  deliver(namespace: Namespace, target: HttpTarget, delivery: Delivery): Promise<TargetResult>;
  close(): void;
};

/**
 * True when the namespace allowlists the URL's host. Exact, case-insensitive host match
 * (`api.example.com`, `127.0.0.1`, `[::1]` or `::1`); no wildcards, no ports, no subdomains.
 */
export function isAllowlisted(namespace: Namespace, url: URL): boolean {
  const host = url.hostname.toLowerCase();
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  return namespace.allowedHosts.some((allowed) => {
    const entry = allowed.trim().toLowerCase();
    return entry === host || entry === bare;
  });
}

/** Maps an HTTP answer to a target outcome (2xx delivered, 410 disable, 408/429/5xx retry, rest dead). */
export function outcomeOf(response: HttpResponse): TargetResult {
  const { status } = response;
  if (status >= 200 && status < 300) return { outcome: 'delivered', statusCode: status };
  const detail = response.body.trim();
  const error = `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  if (status >= 300 && status < 400) {
    return { outcome: 'dead', statusCode: status, error: `HTTP ${status}: redirects are not followed` };
  }
  if (status === 410) return { outcome: 'disable', statusCode: status, error };
  if (status === 408 || status === 429 || status >= 500) {
    const header = response.headers['retry-after'];
    const retryAfterMs =
      status === 429 || status === 503
        ? parseRetryAfter(Array.isArray(header) ? header[0] : header)
        : undefined;
    return retryAfterMs === undefined
      ? { outcome: 'retry', statusCode: status, error }
      : { outcome: 'retry', statusCode: status, error, retryAfterMs };
  }
  return { outcome: 'dead', statusCode: status, error };
}

const OWN_HEADERS = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'host',
]);

// A target's own headers never replace the ones the signature and framing depend on.
function customHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers ?? {}).filter(([name]) => !OWN_HEADERS.has(name.toLowerCase())),
  );
}

/** Delivers to HTTP targets: signed structured CloudEvents behind the SSRF guard. */
export function createHttpTarget(): HttpTargetRunner {
  const agents = createWebhookAgents();
  return {
    async deliver(namespace, target, delivery) {
      let url: URL;
      try {
        url = new URL(target.url);
      } catch {
        return { outcome: 'dead', error: `invalid webhook URL ${JSON.stringify(target.url)}` };
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        return { outcome: 'dead', error: `webhook URL must be http or https, not ${url.protocol}` };
      }
      const guarded = !isAllowlisted(namespace, url);
      // An IP literal is connected to without any lookup, so it is checked here, before connecting.
      const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      if (guarded && isIP(bare) !== 0 && isRefusedAddress(bare)) {
        return { outcome: 'dead', error: new SsrfRefusedError(bare, url.hostname).message };
      }
      const body = JSON.stringify(toCloudEvent(delivery));
      const timestamp = Math.floor(Date.now() / 1000);
      let signature: string;
      try {
        signature = signWebhook(target.secret, delivery.messageId, timestamp, body);
      } catch (error) {
        return { outcome: 'dead', error: (error as Error).message };
      }
      const headers = {
        ...customHeaders(target.headers),
        'content-type': 'application/cloudevents+json',
        'user-agent': 'Mercato-WAL/1',
        'webhook-id': delivery.messageId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature,
      };
      try {
        const agent = agents.agentFor(url.protocol, guarded);
        return outcomeOf(await postOnce(url, agent, headers, body, target.timeoutMs));
      } catch (error) {
        if (error instanceof SsrfRefusedError) return { outcome: 'dead', error: error.message };
        if (error instanceof RequestTimeoutError) return { outcome: 'retry', error: error.message };
        return { outcome: 'retry', error: `network error: ${(error as Error).message}` };
      }
    },
    close: () => agents.close(),
  };
}
