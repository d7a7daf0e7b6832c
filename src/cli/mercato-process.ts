import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/mercato.js', import.meta.url));

export type MercatoProcess = {
  child: ChildProcess;
  output(): string;
  /** What it wrote to stderr alone. */
  errors(): string;
  /** Resolves with the first output match, rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** The exit code, or the name of the signal that killed the process. */
  exited: Promise<number | string | null>;
};

/** Runs `mercato <args>` on the pinned Node in a child process, for tests and benchmarks. */
export function runMercato(args: string[], env: Record<string, string | undefined>): MercatoProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    text += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    append(chunk);
  });
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  return {
    child,
    output: () => text,
    errors: () => stderr,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (match) {
            done();
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${text}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        exited.then((code) => {
          if (!listeners.has(check)) return;
          done();
          reject(new Error(`exited with ${code} before ${pattern}; output:\n${text}`));
        });
        check();
      });
    },
  };
}

/** `mercato start` with env (PORT 0 unless given), once its API listens: the process and its base URL. */
export async function startMercatoServer(
  env: Record<string, string | undefined>,
): Promise<{ server: MercatoProcess; base: string }> {
  const server = runMercato(['start'], { PORT: '0', ...env });
  const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
  return { server, base: base as string };
}

/** Runs a mercato command to completion and returns its exit code and output. */
export async function mercato(args: string[], env: Record<string, string | undefined>) {
  const run = runMercato(args, env);
  const code = await run.exited;
  return { code, output: run.output(), errors: run.errors() };
}

/** One JSON call to a started server (crash tests): its status, parsed body and headers. */
export async function callServer(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

/** The demo tenant's admin signed in on a started server run with MERCATO_DEMO_PASSWORD=password: its access token. */
export async function signInDemoAdmin(base: string, password: string): Promise<string> {
  const login = await callServer(
    base,
    'POST',
    '/api/v1/auth/login',
    {},
    { tenant: 'demo', email: 'admin@demo.test', password },
  );
  if (login.status !== 200)
    throw new Error(`demo admin login: ${login.status} ${JSON.stringify(login.body)}`);
  return (login.body as { accessToken: string }).accessToken;
}

/** Stops (SIGTERM) the servers still running and waits for them: a crash test's afterAll. */
export async function stopServers(servers: MercatoProcess[]): Promise<void> {
  for (const server of servers) {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }
}

/**
 * A crash test's load: `writers` loops of `write(w, n)` for `loadMs`, the server killed with SIGKILL
 * after `killAfterMs`. `write` sends one request and says whether it was acknowledged; one that
 * throws (refused or reset: the server is dead) counts as failed, and its loop ends once the
 * server is. Answers how many failed and how the server exited.
 */
export async function loadUntilKilled(
  server: MercatoProcess,
  options: { writers: number; loadMs: number; killAfterMs: number },
  write: (w: number, n: number) => Promise<boolean>,
): Promise<{ failed: number; exited: number | string | null }> {
  let failed = 0;
  const stopAt = Date.now() + options.loadMs;
  const writer = async (w: number) => {
    for (let n = 0; Date.now() < stopAt; n++) {
      try {
        if (!(await write(w, n))) failed += 1;
      } catch {
        failed += 1;
        if (server.child.signalCode !== null) return;
      }
    }
  };
  const killer = new Promise<void>((resolve) =>
    setTimeout(() => {
      server.child.kill('SIGKILL');
      resolve();
    }, options.killAfterMs),
  );
  await Promise.all([killer, ...Array.from({ length: options.writers }, (_, w) => writer(w))]);
  return { failed, exited: await server.exited };
}
