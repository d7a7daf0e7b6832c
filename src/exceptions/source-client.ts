import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Logger } from '../platform/observability/index.ts';
import { HostLookupError, type SsrfGuard, SsrfRefusedError } from '../wal/index.ts';

/** Largest payload a source may answer (the detail shows it; a retry re-sends it). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** How much of a retry endpoint's answer is kept, as the attempt's outcome. */
const MAX_OUTCOME_BYTES = 1024;

/** How Mercato signs in to a source: a bearer token, or HTTP Basic. */
export type Credentials = { token: string } | { username: string; password: string };

/** A source as a call needs it: where, how long to wait, and the decrypted credentials. */
export type SourceTarget = { baseUrl: string; timeoutMs: number; credentials: Credentials | null };

/**
 * A call to a source that did not give a usable answer. `transient` ones (network errors,
 * timeouts, 408, 429, 5xx) count against the source's circuit breaker and are retried; the rest
 * (other 4xx, redirects, a refused destination, an answer too large or not JSON) are the answer.
 */
export class SourceError extends Error {
  override name = 'SourceError';
  readonly transient: boolean;
  readonly status: number | undefined;
  constructor(message: string, transient: boolean, status?: number) {
    super(message);
    this.transient = transient;
    this.status = status;
  }
}

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

/** The URL of `path` under the source's base URL (whose own path is kept). */
export function sourceUrl(baseUrl: string, path: string): URL {
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${path}`;
  return url;
}

function authorization(credentials: Credentials | null): Record<string, string> {
  if (!credentials) return {};
  if ('token' in credentials) return { authorization: `Bearer ${credentials.token}` };
  const basic = Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64');
  return { authorization: `Basic ${basic}` };
}

// PostgreSQL text holds no NUL; the outcome is shown to the tenant's operators.
const printable = (bytes: Buffer): string =>
  bytes.subarray(0, MAX_OUTCOME_BYTES).toString('utf8').replaceAll('\u0000', '\ufffd').trim();

/**
 * HTTP calls to a tenant's source, behind the WAL's SSRF guard: an IP literal is checked before
 * connecting, a name where it resolves (so DNS rebinding cannot pass); redirects are never
 * followed; `timeoutMs` covers connecting, the answer and its body. Credentials go in the
 * Authorization header only and are never logged; refusals are logged for the operator, while the
 * tenant reads only the guard's generic message.
 */
export function createSourceClient(guard: SsrfGuard, logger: Logger) {
  function send(
    method: 'GET' | 'POST',
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
    timeoutMs: number,
    maxBytes: number,
  ): Promise<Answer> {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.reject(new SourceError('the source URL must be http or https', false));
    }
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(bare) !== 0) {
      const reason = guard.refusal(bare, bare, port);
      if (reason !== undefined) return Promise.reject(new SsrfRefusedError(bare, url.hostname, reason));
    }
    const request = url.protocol === 'https:' ? https.request : http.request;
    const controller = new AbortController();
    return new Promise<Answer>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(timedOut ? new SourceError(`timed out after ${timeoutMs} ms`, true) : error);
      };
      const outgoing = request(
        url,
        {
          method,
          agent: false,
          lookup: guard.lookupFor(port),
          signal: controller.signal,
          headers:
            body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) {
              response.destroy();
              fail(
                new SourceError(
                  `the source answered more than ${maxBytes} bytes`,
                  false,
                  response.statusCode,
                ),
              );
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => {
            clearTimeout(timer);
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks),
            });
          });
          response.on('error', fail);
        },
      );
      outgoing.on('error', fail);
      outgoing.end(body);
    });
  }

  /** Runs a call, turning guard refusals and network errors into SourceErrors the tenant may read. */
  async function call(
    method: 'GET' | 'POST',
    url: URL,
    headers: Record<string, string>,
    body: string | undefined,
    timeoutMs: number,
    maxBytes: number,
  ): Promise<Answer> {
    let answer: Answer;
    try {
      answer = await send(method, url, headers, body, timeoutMs, maxBytes);
    } catch (error) {
      if (error instanceof SourceError) throw error;
      if (error instanceof SsrfRefusedError || error instanceof HostLookupError) {
        const refused = error instanceof SsrfRefusedError;
        logger.warn(
          refused
            ? { host: error.host, address: error.address, reason: error.reason }
            : { host: error.host, cause: (error.cause as Error | undefined)?.message },
          refused ? 'exception source refused by the SSRF guard' : 'exception source host did not resolve',
        );
        throw new SourceError(error.message, !refused);
      }
      // The code only (ECONNREFUSED, ECONNRESET): Node's message names the address connected to.
      const { code, message } = error as NodeJS.ErrnoException;
      throw new SourceError(`network error: ${code ?? message}`, true);
    }
    const { status } = answer;
    if (status >= 200 && status < 300) return answer;
    const detail = printable(answer.body);
    const text = `HTTP ${status}${detail ? `: ${detail.slice(0, 200)}` : ''}`;
    if (status >= 300 && status < 400)
      throw new SourceError(`HTTP ${status}: redirects are not followed`, false, status);
    throw new SourceError(text, status === 408 || status === 429 || status >= 500, status);
  }

  return {
    /** GET {baseUrl}/payloads/{id}: the payload, JSON of at most 1 MiB (never for an id of . or ..). */
    async getPayload(target: SourceTarget, id: string): Promise<unknown> {
      // A URL reads . and .. (encoded too: %2e) as a step up: {baseUrl}/payloads/.. is {baseUrl}/.
      if (id === '.' || id === '..')
        throw new SourceError(`the id ${id} cannot name a payload in a URL path`, false);
      const url = sourceUrl(target.baseUrl, `payloads/${encodeURIComponent(id)}`);
      const headers = {
        accept: 'application/json',
        'user-agent': 'Mercato-Exceptions/1',
        ...authorization(target.credentials),
      };
      const answer = await call('GET', url, headers, undefined, target.timeoutMs, MAX_PAYLOAD_BYTES);
      try {
        return JSON.parse(answer.body.toString('utf8')) as unknown;
      } catch {
        throw new SourceError('the source answered something that is not JSON', false, answer.status);
      }
    },

    /** POST {baseUrl}/retry with the signed body; resolves with the 2xx answer's status and text. */
    async postRetry(
      target: SourceTarget,
      body: string,
      signature: Record<string, string>,
    ): Promise<{ status: number; text: string }> {
      const url = sourceUrl(target.baseUrl, 'retry');
      const headers = {
        'content-type': 'application/json',
        'user-agent': 'Mercato-Exceptions/1',
        ...authorization(target.credentials),
        ...signature,
      };
      const answer = await call('POST', url, headers, body, target.timeoutMs, MAX_PAYLOAD_BYTES);
      return { status: answer.status, text: printable(answer.body) };
    },
  };
}

export type SourceClient = ReturnType<typeof createSourceClient>;
