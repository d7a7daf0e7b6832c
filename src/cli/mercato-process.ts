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
