/**
 * Load for `npm run bench:commerce`: autocannon (in this process) with a request built per call,
 * so each request can take the next query string, product id, cart or reservation key, and every
 * response time recorded by this process, so p95 is exact (autocannon's own summary has p50,
 * p90, p97.5 and p99 but no p95).
 */
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { quantileOf } from '../wal-common.ts';

export type Request = { method?: string; path: string; headers?: Record<string, string>; body?: string };

export type LoadResult = {
  name: string;
  connections: number;
  seconds: number;
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Responses per status code. */
  statuses: Record<string, number>;
};

export type LoadOptions = {
  name: string;
  /** Origin, e.g. http://127.0.0.1:3000 */
  base: string;
  connections: number;
  /** Seconds of the measured run; ignored when `until` stops it sooner. */
  duration: number;
  /** Seconds of an unmeasured run before it (0 for none). */
  warmup?: number;
  /** The i-th request of the run (i counts from 0 across all connections). */
  next: (i: number) => Request;
  /** Called on every response of the measured run; return true to stop the run. */
  until?: (status: number) => boolean;
};

const round = (ms: number) => Math.round(ms * 100) / 100;

async function once(options: LoadOptions, seconds: number, measure: boolean): Promise<LoadResult> {
  let i = 0;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let first = 0;
  let last = 0;
  let stopped = false;
  let done!: (value: autocannon.Result) => void;
  let failed!: (error: unknown) => void;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  const instance = autocannon(
    {
      url: options.base,
      connections: options.connections,
      duration: seconds,
      requests: [
        {
          setupRequest: (request: autocannon.Request) => {
            const next = options.next(i++);
            return {
              ...request,
              method: (next.method ?? 'GET') as autocannon.Request['method'],
              path: next.path,
              headers: { ...next.headers },
              body: next.body ?? '',
            };
          },
        },
      ],
    },
    (error, result) => (error ? failed(error) : done(result)),
  );
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    if (stopped) return;
    const now = performance.now();
    if (first === 0) first = now - responseTime;
    last = now;
    latencies.push(responseTime);
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (measure && options.until?.(status)) {
      stopped = true;
      instance.stop();
    }
  });
  const result = await finished;
  const sorted = Float64Array.from(latencies).sort();
  const elapsed = Math.max(0.001, (last - first) / 1000);
  return {
    name: options.name,
    connections: options.connections,
    seconds: round(elapsed),
    requests: latencies.length,
    rps: Math.round(latencies.length / elapsed),
    p50: round(quantileOf(sorted, 0.5)),
    p95: round(quantileOf(sorted, 0.95)),
    p99: round(quantileOf(sorted, 0.99)),
    errors: result.errors + result.timeouts,
    non2xx: Object.entries(statuses).reduce((n, [code, count]) => n + (code.startsWith('2') ? 0 : count), 0),
    statuses,
  };
}

/** Runs the warm-up (if any), then the measured load; prints and returns the figures. */
export async function measure(options: LoadOptions): Promise<LoadResult> {
  if (options.warmup) await once(options, options.warmup, false);
  const result = await once(options, options.duration, true);
  const codes = Object.entries(result.statuses)
    .map(([code, n]) => `${code}×${n}`)
    .join(' ');
  console.log(
    `${result.name}: ${result.rps}/s (load ${loadavg()[0]!.toFixed(1)}) over ${result.seconds} s, p50 ${result.p50} p95 ${result.p95} p99 ${result.p99} ms, errors ${result.errors}, ${codes}`,
  );
  return result;
}

/** Cycles through `items` from a fixed start, one per call. */
export const rotate =
  <T>(items: readonly T[]) =>
  (i: number): T =>
    items[i % items.length]!;
