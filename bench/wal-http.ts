/**
 * Part `http` of `npm run bench:wal`: `POST /api/v1/wal/write` against the real server
 * (`mercato start`) on the bench database, single writes at 64 connections. The load comes from
 * wrk when it is installed (`apt install wrk`: a C client that leaves the server most of a 2-core
 * machine), otherwise from autocannon, which on such a machine takes about a core of its own.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { runMercato } from '../src/cli/mercato-process.ts';
import {
  ADMIN_EMAIL,
  DURATION,
  MERCATO_DB,
  PASSWORD,
  PAYLOAD,
  results,
  urlOf,
  WORKERS,
} from './wal-common.ts';
import { startFloorServer } from './wal-http-floor.ts';

export type HttpRow = {
  tool: 'wrk' | 'autocannon';
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
};

type Load = { url: string; headers: Record<string, string>; body: string; connections: number };

const hasWrk = () => spawnSync('wrk', ['--version'], { encoding: 'utf8' }).error === undefined;

/**
 * Single writes of the 1 KiB payload to `url` at 64 connections: 2 s of warm-up, then DURATION s;
 * `onTimed` runs as the timed load starts.
 */
async function measureWrites(
  label: string,
  url: string,
  headers: Record<string, string>,
  namespace = 'bench-http',
  onTimed = () => {},
): Promise<HttpRow> {
  const load = {
    url,
    headers,
    body: JSON.stringify({ namespace, payload: PAYLOAD }),
    connections: 64,
  };
  const run = hasWrk() ? withWrk : withAutocannon;
  await run(load, 2);
  onTimed();
  const row = await run(load, DURATION);
  console.log(label, row);
  return row;
}

/**
 * The same load on a namespace with one HTTP target, a receiver in this process answering 204,
 * which the server delivers to (signed CloudEvents) while it takes the writes: what a producer and
 * a webhook consumer get together from one process. Adds the `httpWebhook*` figures.
 */
async function measureWebhookWrites(base: string, headers: Record<string, string>): Promise<void> {
  let received = 0;
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received += 1;
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = receiver.address() as { port: number };
    const created = await fetch(`${base}/api/v1/wal/namespaces`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name: 'bench-http-webhook',
        consumerConcurrency: 16,
        targets: [
          {
            type: 'http',
            name: 'receiver',
            url: `http://127.0.0.1:${port}/hook`,
            secret: `whsec_${randomBytes(24).toString('base64')}`,
          },
        ],
      }),
    });
    if (created.status !== 201) throw new Error(`namespace: ${created.status} ${await created.text()}`);
    let from = 0;
    const row = await measureWrites(
      'http webhook',
      `${base}/api/v1/wal/write`,
      headers,
      'bench-http-webhook',
      () => {
        from = received;
      },
    );
    results['httpWebhookRps'] = row.rps;
    results['httpWebhookP50'] = row.p50;
    results['httpWebhookP99'] = row.p99;
    results['httpWebhookDelivered'] = Math.round((received - from) / DURATION);
  } finally {
    // Its undelivered backlog would otherwise be delivered (and refused) during later parts.
    await fetch(`${base}/api/v1/wal/namespaces/bench-http-webhook`, {
      method: 'DELETE',
      headers: { authorization: headers['authorization'] ?? '' },
    }).catch(() => {});
    await new Promise((resolve) => receiver.close(resolve));
  }
}

/** Milliseconds from a wrk duration: `850.00us`, `15.02ms`, `1.20s`. */
const msOf = (text: string) => {
  const [, n, unit] = /^([\d.]+)(us|ms|s|m)$/.exec(text) ?? [];
  if (n === undefined) throw new Error(`wrk: cannot read the duration ${text}`);
  return Number(n) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[unit!]!;
};

async function withWrk(load: Load, seconds: number): Promise<HttpRow> {
  const dir = mkdtempSync(join(tmpdir(), 'mercato-wrk-'));
  try {
    const script = join(dir, 'post.lua');
    const headers = Object.entries(load.headers).map(
      ([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`,
    );
    writeFileSync(
      script,
      [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(load.body)}`, ...headers].join('\n'),
    );
    const args = [
      '-t',
      '1',
      '-c',
      String(load.connections),
      '-d',
      `${seconds}s`,
      '--latency',
      '-s',
      script,
      load.url,
    ];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`wrk exited with ${code}: ${out}`);
    const grab = (re: RegExp) => re.exec(out)?.[1];
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    return {
      tool: 'wrk',
      rps: Math.round(Number(grab(/Requests\/sec:\s+([\d.]+)/))),
      p50: msOf(grab(/^\s+50%\s+(\S+)/m) ?? ''),
      p99: msOf(grab(/^\s+99%\s+(\S+)/m) ?? ''),
      errors: socket ? socket.slice(1).reduce((n, v) => n + Number(v), 0) : 0,
      non2xx: Number(grab(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function withAutocannon(load: Load, seconds: number): Promise<HttpRow> {
  const result = await autocannon({ ...load, method: 'POST', duration: seconds });
  return {
    tool: 'autocannon',
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

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
    // the operator opens the loopback webhook receiver of measureWebhookWrites
    MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1',
  });
  try {
    const [, base = ''] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
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
    const row = await measureWrites('http', `${base}/api/v1/wal/write`, headers);
    await measureWebhookWrites(base, headers);
    return row;
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

/** The same load on the floor server (wal-http-floor.ts), after Mercato's server has stopped. */
export async function runHttpFloor(): Promise<HttpRow> {
  const floor = await startFloorServer();
  try {
    return await measureWrites('http floor', floor.url, { 'content-type': 'application/json' });
  } finally {
    await floor.close();
  }
}
