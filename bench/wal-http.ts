/**
 * Part `http` of `npm run bench:wal`: autocannon on `POST /api/v1/wal/write` against the real
 * server (`mercato start`) on the bench database, single writes at 64 connections.
 */
import autocannon from 'autocannon';
import { runMercato } from '../src/cli/mercato-process.ts';
import { ADMIN_EMAIL, DURATION, MERCATO_DB, PASSWORD, PAYLOAD, urlOf, WORKERS } from './wal-common.ts';

export type HttpRow = { rps: number; p50: number; p99: number; errors: number; non2xx: number };

export async function runHttp(): Promise<HttpRow> {
  const server = runMercato(['start'], {
    DATABASE_URL: urlOf(MERCATO_DB),
    PORT: '0',
    LOG_LEVEL: 'warn',
    MERCATO_WORKERS: WORKERS,
    MERCATO_DEMO: 'false',
    MERCATO_RATE_LIMIT_ANONYMOUS: '100000000',
    MERCATO_RATE_LIMIT_AUTHENTICATED: '100000000',
    MERCATO_LOGIN_RATE_LIMIT: '100000000',
    MERCATO_LOGIN_MAX_FAILURES: '100000000',
  });
  try {
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'bench', email: ADMIN_EMAIL, password: PASSWORD }),
    });
    const { accessToken } = (await login.json()) as { accessToken: string };
    const headers = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}/api/v1/wal/namespaces`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'bench-http', targets: [] }),
    });
    if (created.status !== 201) throw new Error(`namespace: ${created.status} ${await created.text()}`);
    const options = {
      url: `${base}/api/v1/wal/write`,
      method: 'POST' as const,
      headers,
      body: JSON.stringify({ namespace: 'bench-http', payload: PAYLOAD }),
      connections: 64,
    };
    await autocannon({ ...options, duration: 2 });
    const result = await autocannon({ ...options, duration: DURATION });
    const http = {
      rps: Math.round(result.requests.average),
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.timeouts,
      non2xx: result.non2xx,
    };
    console.log('http', http);
    return http;
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}
