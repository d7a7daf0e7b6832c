/**
 * The measured HTTP calls of `npm run bench:checkout`: JSON over node:http with keep-alive, each
 * call timed from the request to the last byte of its answer. The same client drives Mercato and
 * the DBOS peer, so both pay the same client costs. (bench/commerce/api.ts, on fetch, does the
 * unmeasured set-up calls.)
 */
import http from 'node:http';

export type Reply<T = unknown> = { status: number; body: T; ms: number };

export type Client = {
  send<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Reply<T>>;
  close(): void;
};

/** A client of `base` (e.g. http://127.0.0.1:3000); one keep-alive connection per call in flight. */
export function clientOf(base: string): Client {
  const origin = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  return {
    send(method, path, body, headers = {}) {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const started = performance.now();
      return new Promise((resolve, reject) => {
        const request = http.request(
          {
            agent,
            host: origin.hostname,
            port: origin.port,
            method,
            path,
            headers: {
              ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
              ...headers,
            },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('error', reject);
            response.on('end', () => {
              const ms = performance.now() - started;
              const text = Buffer.concat(chunks).toString();
              let parsed: unknown = text;
              try {
                parsed = text === '' ? undefined : JSON.parse(text);
              } catch {}
              resolve({ status: response.statusCode ?? 0, body: parsed as never, ms });
            });
          },
        );
        request.on('error', reject);
        request.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** A short label of an answer that was not the one expected, e.g. `409 INSUFFICIENT_STOCK`. */
export function problemOf(reply: Reply): string {
  const body = reply.body as { code?: unknown; status?: unknown } | undefined;
  const detail =
    typeof body?.code === 'string' ? body.code : typeof body?.status === 'string' ? body.status : '';
  return `${reply.status}${detail ? ` ${detail}` : ''}`;
}
