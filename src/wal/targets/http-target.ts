import { isIP } from 'node:net';
import { signWebhook } from '../../platform/webhook-signature.ts';
import type { HttpTarget, Namespace, OpenHttpTarget } from '../namespaces/namespace.ts';
import { isSealed, type TargetPlace } from '../namespaces/sealed-targets.ts';
import { toCloudEvent } from './cloud-event.ts';
import {
  createWebhookAgents,
  type HttpResponse,
  isReservedHeader,
  postOnce,
  RequestTimeoutError,
} from './http-request.ts';
import { parseRetryAfter } from './retry-after.ts';
import { createSsrfGuard, HostLookupError, type Resolve, SsrfRefusedError } from './ssrf-guard.ts';
import { normalizeHost } from './ssrf-guard-ip.ts';
import type { Delivery, TargetResult } from './target-result.ts';

export type HttpTargetRunner = {
  deliver(namespace: Namespace, target: HttpTarget, delivery: Delivery): Promise<TargetResult>;
  close(): void;
};

/**
 * True when the namespace lets its targets point at the URL's host: its `allowedHosts` is empty,
 * or lists that host (exact match after normalizing: case, brackets, IPv6 and IPv4 notation).
 * It only narrows: an allowed host still has to pass the SSRF guard.
 */
export function isAllowedHost(namespace: Namespace, url: URL): boolean {
  if (namespace.allowedHosts.length === 0) return true;
  const host = normalizeHost(url.hostname);
  return namespace.allowedHosts.some((allowed) => normalizeHost(allowed) === host);
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

const OWN_HEADERS = new Set(['content-type', 'user-agent']);

// A target's own headers never replace the ones the signature and framing depend on (validation
// refuses reserved ones; a namespace stored before that rule has them dropped here).
function customHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers ?? {}).filter(
      ([name]) => !OWN_HEADERS.has(name.toLowerCase()) && !isReservedHeader(name),
    ),
  );
}

/** Where refusals and lookup failures are logged in full (ctx.logger). */
export type WarnLogger = { warn(details: object, message: string): void };

type Refused = SsrfRefusedError | HostLookupError;

/** Opens a target's sealed secret and credential headers (createTargetOpener: once per stored version). */
export type OpenTarget = (place: TargetPlace, target: HttpTarget) => Promise<OpenHttpTarget>;

/** Without a SecretBox (tests of the target alone): values in clear only. */
const clearOnly: OpenTarget = async (_place, target) => {
  const values = [target.secret, ...Object.values(target.headers ?? {})];
  if (values.some(isSealed)) throw new Error('the target holds sealed values and no key was given');
  return target as OpenHttpTarget;
};

/**
 * Delivers to HTTP targets: signed structured CloudEvents behind the SSRF guard. privateTargets
 * are the operator's MERCATO_WAL_PRIVATE_TARGETS (a bad entry throws ConfigError). The tenant
 * reads only a generic error when the guard refuses or the host does not resolve (which address
 * an internal name has is none of its business); the details go to logger at warn, for the
 * operator. resolve replaces dns.lookup in tests.
 */
export function createHttpTarget(
  options: {
    privateTargets?: readonly string[];
    logger?: WarnLogger;
    resolve?: Resolve;
    /** Opens the sealed secret and credential headers (default: clear values only). */
    open?: OpenTarget;
  } = {},
): HttpTargetRunner {
  const openTarget = options.open ?? clearOnly;
  const guard = createSsrfGuard(options.privateTargets, options.resolve);
  const logRefused = (namespace: Namespace, target: HttpTarget, error: Refused) => {
    const details = {
      tenantId: namespace.tenantId,
      namespace: namespace.name,
      target: target.name,
      host: error.host,
      ...(error instanceof SsrfRefusedError
        ? { address: error.address, reason: error.reason }
        : { cause: (error.cause as Error).message }),
    };
    options.logger?.warn(
      details,
      error instanceof SsrfRefusedError
        ? 'webhook destination refused by the SSRF guard'
        : 'webhook host did not resolve',
    );
  };
  const agents = createWebhookAgents();
  return {
    async deliver(namespace, stored, delivery) {
      let target: OpenHttpTarget;
      try {
        target = await openTarget({ tenantId: namespace.tenantId, namespace: namespace.name }, stored);
      } catch (error) {
        // Another MERCATO_SECRETS_KEY sealed it: the operator names the old key, or the tenant sends it again.
        return { outcome: 'retry', error: `the target's secret does not open: ${(error as Error).message}` };
      }
      let url: URL;
      try {
        url = new URL(target.url);
      } catch {
        return { outcome: 'dead', error: `invalid webhook URL ${JSON.stringify(target.url)}` };
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        return { outcome: 'dead', error: `webhook URL must be http or https, not ${url.protocol}` };
      }
      if (!isAllowedHost(namespace, url)) {
        return { outcome: 'dead', error: `host ${url.hostname} is not in the namespace's allowedHosts` };
      }
      const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
      // An IP literal is connected to without any lookup, so it is checked here, before connecting.
      const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      if (isIP(bare) !== 0) {
        const reason = guard.refusal(bare, bare, port);
        if (reason !== undefined) {
          const refused = new SsrfRefusedError(bare, url.hostname, reason);
          logRefused(namespace, target, refused);
          return { outcome: 'dead', error: refused.message };
        }
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
        const agent = agents.agentFor(namespace.tenantId, url.protocol);
        return outcomeOf(await postOnce(url, agent, guard.lookupFor(port), headers, body, target.timeoutMs));
      } catch (error) {
        if (error instanceof SsrfRefusedError || error instanceof HostLookupError) {
          logRefused(namespace, target, error);
          return { outcome: error instanceof SsrfRefusedError ? 'dead' : 'retry', error: error.message };
        }
        if (error instanceof RequestTimeoutError) return { outcome: 'retry', error: error.message };
        // The code only (ECONNREFUSED, ECONNRESET): Node's message names the address connected to.
        const { code, message } = error as NodeJS.ErrnoException;
        return { outcome: 'retry', error: `network error: ${code ?? message}` };
      }
    },
    close: () => agents.close(),
  };
}
