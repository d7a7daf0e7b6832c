/**
 * The load client of `npm run bench:flash`, the same for Mercato and both peers: `connections`
 * keep-alive HTTP/1.1 sockets of node:net, each with one attempt in flight, writing requests
 * built from strings made once per customer and reading answers with a minimal parser (status,
 * Content-Length or chunked body). It costs the shared cores far less than node:http or
 * autocannon per request, so more of them go to the server being measured.
 *
 * Each connection takes the next customer still trying (round robin over all of them, skipping one
 * whose attempt is in flight) and sends `POST <path>` with the customer's Bearer token and an
 * Idempotency-Key of its own per attempt. Two ways to stop:
 * - `sale`: a customer answered 202 (or LIMIT_REACHED: it holds its limit) stops trying; the
 *   selling phase ends when `units` customers were admitted (or when only SOLD_OUT answers came
 *   for 5 s and no attempt is older than that, or no customer is left, or after
 *   `maxSellingSeconds`), then everyone left goes on for `soldOutSeconds`: the sold-out phase.
 * - `time`: every customer goes on whatever the answer, for `seconds` (the bare peer, which admits
 *   every attempt).
 * An answer counts in the phase in which it arrived; latency is from the request's write to its
 * answer's last byte.
 */
import net from 'node:net';
import { loadavg } from 'node:os';
import { quantileOf } from '../wal-common.ts';
import type { Buyer } from './customers.ts';

export type Phase = { attempts: number; seconds: number; rate: number; p50: number; p99: number };

export type Stop =
  | { kind: 'sale'; units: number; soldOutSeconds: number; maxSellingSeconds: number }
  | { kind: 'time'; seconds: number };

export type SaleLoadOptions = {
  name: string;
  /** Origin, e.g. http://127.0.0.1:3000 */
  base: string;
  path: string;
  buyers: Buyer[];
  connections: number;
  /** The request body of every attempt (JSON). */
  body: string;
  /** Idempotency-Keys are `<keyPrefix><attempt number of the customer>`. */
  keyPrefix: string;
  stop: Stop;
  /** Called once when the selling phase ends. */
  onSoldOut?: () => void;
  /** Print the figures (default true). */
  quiet?: boolean;
};

export type SellingEnd =
  | 'units admitted'
  | 'only sold-out answers for 5 s'
  | 'no customer left'
  | 'time limit';

export type SaleRun = {
  name: string;
  connections: number;
  customers: number;
  /** `sale` runs only. */
  selling?: Phase;
  soldOut?: Phase;
  sellingEndedBy?: SellingEnd;
  whole: Phase;
  /** Answers by status and problem code (`202`, `409 SOLD_OUT`, `429 RATE_LIMITED`…) and failures. */
  answers: Record<string, number>;
  /** The 202 answers of a `sale` run: who was admitted, with the order id answered. */
  admitted: Array<{ buyer: string; orderId: string }>;
  /** Connection failures and timeouts (attempts that got no answer). */
  errors: number;
};

/** An attempt with no answer after this long counts as an error and its connection is replaced. */
const TIMEOUT_MS = 60_000;
const NO_ADMISSION_WITHIN_MS = 5000;

type Conn = {
  socket: net.Socket;
  buf: Buffer | undefined;
  buyer: number;
  sentAt: number;
  inFlight: boolean;
  closed: boolean;
};

type Parsed = { status: number; body: string; used: number; close: boolean };

/** One whole response at the start of `buf`, or undefined while it is incomplete. */
export function parseResponse(buf: Buffer): Parsed | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = buf.toString('latin1', 0, end).toLowerCase();
  const status = Number(head.slice(9, 12));
  const close = head.includes('\r\nconnection: close');
  const at = head.indexOf('\r\ncontent-length:');
  if (at >= 0) {
    const length = Number.parseInt(head.slice(at + 17), 10);
    if (buf.length < end + 4 + length) return undefined;
    return { status, body: buf.toString('utf8', end + 4, end + 4 + length), used: end + 4 + length, close };
  }
  if (!head.includes('\r\ntransfer-encoding: chunked')) return { status, body: '', used: end + 4, close };
  const parts: Buffer[] = [];
  let pos = end + 4;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', pos);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(buf.toString('latin1', pos, lineEnd), 16);
    if (size === 0) {
      if (buf.length < lineEnd + 4) return undefined;
      return { status, body: Buffer.concat(parts).toString('utf8'), used: lineEnd + 4, close };
    }
    if (buf.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

function phaseOf(latencies: number[], seconds: number): Phase {
  const sorted = Float64Array.from(latencies).sort();
  const s = Math.max(0.001, seconds);
  return {
    attempts: latencies.length,
    seconds: round(s),
    rate: Math.round(latencies.length / s),
    p50: round(quantileOf(sorted, 0.5)),
    p99: round(quantileOf(sorted, 0.99)),
  };
}

const CODE = /"code":"([A-Z_]+)"/;
const ORDER_ID = /"orderId":"([0-9a-f-]+)"/;

/** Runs the load; see the module's doc. */
export async function runSale(o: SaleLoadOptions): Promise<SaleRun> {
  const origin = new URL(o.base);
  const host = origin.hostname;
  const port = Number(origin.port);
  const n = o.buyers.length;
  const bodyLength = Buffer.byteLength(o.body);
  const heads: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    heads[i] =
      `POST ${o.path} HTTP/1.1\r\nhost: ${host}:${port}\r\nauthorization: Bearer ${o.buyers[i]!.token}\r\n` +
      `content-type: application/json\r\ncontent-length: ${bodyLength}\r\nidempotency-key: ${o.keyPrefix}`;
  }
  const tail = `\r\n\r\n${o.body}`;
  const tries = new Uint32Array(n);
  /** 1 once the customer stopped trying (admitted, or at its limit). */
  const done = new Uint8Array(n);
  const busy = new Uint8Array(n);
  const sale = o.stop.kind === 'sale' ? o.stop : undefined;
  let active = n;
  let cursor = 0;
  let admittedCount = 0;
  const admitted: SaleRun['admitted'] = [];
  const answers: Record<string, number> = {};
  const count = (label: string) => {
    answers[label] = (answers[label] ?? 0) + 1;
  };
  let errors = 0;
  const selling: number[] = [];
  const soldOut: number[] = [];
  let inSoldOut = false;
  let started = 0;
  let sellingEnd = 0;
  let sellingEndedBy: SellingEnd | undefined;
  let deadline = Number.POSITIVE_INFINITY;
  let lastAnswer = 0;
  let last202 = 0;
  let firstSoldOut = 0;
  let finished = false;
  const idle: Conn[] = [];
  const conns: Conn[] = [];
  let finish!: () => void;
  const over = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const nextBuyer = (): number => {
    for (let k = 0; k < n; k++) {
      const i = cursor;
      cursor = cursor + 1 === n ? 0 : cursor + 1;
      if (done[i] === 0 && busy[i] === 0) return i;
    }
    return -1;
  };

  const endSelling = (why: SellingEnd, at: number) => {
    if (inSoldOut || !sale) return;
    inSoldOut = true;
    sellingEnd = at;
    sellingEndedBy = why;
    deadline = at + sale.soldOutSeconds * 1000;
    o.onSoldOut?.();
  };

  const maybeFinish = () => {
    if (finished) return;
    const now = performance.now();
    const stopping = now >= deadline || (sale !== undefined && inSoldOut && active === 0);
    if (!stopping || conns.some((c) => c.inFlight)) return;
    finished = true;
    finish();
  };

  const send = (conn: Conn) => {
    if (finished || conn.closed) return;
    if (performance.now() >= deadline) return maybeFinish();
    const i = nextBuyer();
    if (i < 0) {
      idle.push(conn);
      return maybeFinish();
    }
    busy[i] = 1;
    conn.buyer = i;
    conn.inFlight = true;
    const attempt = ++tries[i]!;
    conn.sentAt = performance.now();
    conn.socket.write(heads[i]! + attempt + tail, 'latin1');
  };

  /** Gives each idle connection one more chance (a customer may have become free). */
  const wake = () => {
    for (let k = idle.length; k > 0 && idle.length > 0 && !finished; k--) send(idle.pop()!);
  };

  const answered = (conn: Conn, r: Parsed) => {
    const now = performance.now();
    const ms = now - conn.sentAt;
    conn.inFlight = false;
    const i = conn.buyer;
    busy[i] = 0;
    lastAnswer = now;
    let label: string;
    if (r.status === 202) {
      label = '202';
      if (sale) {
        done[i] = 1;
        active -= 1;
        admittedCount += 1;
        last202 = now;
        admitted.push({ buyer: o.buyers[i]!.id, orderId: ORDER_ID.exec(r.body)?.[1] ?? '' });
      }
    } else {
      const code = CODE.exec(r.body)?.[1];
      label = code ? `${r.status} ${code}` : String(r.status);
      if (sale && code === 'LIMIT_REACHED') {
        done[i] = 1;
        active -= 1;
      } else if (code === 'SOLD_OUT' && firstSoldOut === 0) firstSoldOut = now;
    }
    count(label);
    (inSoldOut ? soldOut : selling).push(ms);
    if (sale && !inSoldOut) {
      if (admittedCount >= sale.units) endSelling('units admitted', now);
      else if (active === 0) endSelling('no customer left', now);
    }
  };

  const failed = (conn: Conn, why: string) => {
    if (conn.inFlight) {
      conn.inFlight = false;
      busy[conn.buyer] = 0;
      errors += 1;
      count(why);
    }
  };

  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      const conn: Conn = { socket, buf: undefined, buyer: -1, sentAt: 0, inFlight: false, closed: false };
      let connected = false;
      socket.once('connect', () => {
        connected = true;
        resolve(conn);
      });
      socket.on('data', (chunk: Buffer) => {
        conn.buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk;
        for (;;) {
          const r = parseResponse(conn.buf);
          if (!r) return;
          conn.buf = r.used < conn.buf.length ? conn.buf.subarray(r.used) : undefined;
          answered(conn, r);
          if (r.close) {
            socket.destroy();
            return;
          }
          if (!conn.buf) break;
        }
        send(conn);
        wake();
      });
      socket.on('error', (error) => {
        if (!connected) reject(error);
        failed(conn, `error: ${error.message.split('\n')[0]}`);
      });
      socket.on('close', () => {
        conn.closed = true;
        if (!connected) return;
        failed(conn, 'connection closed');
        const at = conns.indexOf(conn);
        if (at >= 0) conns.splice(at, 1);
        if (finished) return;
        // A replacement, unless the run is over.
        void open().then(
          (next) => {
            conns.push(next);
            send(next);
          },
          () => {
            errors += 1;
            count('could not reconnect');
            // Nothing left to carry the load (the server is gone): the run is over.
            if (conns.length === 0 && !finished) {
              finished = true;
              finish();
            }
          },
        );
        maybeFinish();
      });
    });

  conns.push(...(await Promise.all(Array.from({ length: o.connections }, open))));
  started = performance.now();
  if (o.stop.kind === 'time') deadline = started + o.stop.seconds * 1000;
  const ticker = setInterval(() => {
    const now = performance.now();
    if (sale && !inSoldOut) {
      // Only when nothing is still waiting from before: an admission being committed may take long.
      const oldest = conns.reduce((t, c) => (c.inFlight ? Math.min(t, c.sentAt) : t), now);
      if (
        firstSoldOut > 0 &&
        now - Math.max(firstSoldOut, last202) > NO_ADMISSION_WITHIN_MS &&
        now - oldest < NO_ADMISSION_WITHIN_MS
      ) {
        endSelling('only sold-out answers for 5 s', now);
      } else if (now - started > sale.maxSellingSeconds * 1000) endSelling('time limit', now);
    }
    for (const conn of conns) {
      if (conn.inFlight && now - conn.sentAt > TIMEOUT_MS) {
        failed(conn, `no answer in ${TIMEOUT_MS / 1000} s`);
        conn.socket.destroy();
      }
    }
    wake();
    maybeFinish();
  }, 100);
  for (const conn of conns) send(conn);
  await over;
  clearInterval(ticker);
  for (const conn of conns) conn.socket.destroy();

  const end = lastAnswer || performance.now();
  const run: SaleRun = {
    name: o.name,
    connections: o.connections,
    customers: n,
    whole: phaseOf(selling.concat(soldOut), (end - started) / 1000),
    answers,
    admitted,
    errors,
  };
  if (sale) {
    const sellingSeconds = ((inSoldOut ? sellingEnd : end) - started) / 1000;
    run.selling = phaseOf(selling, sellingSeconds);
    run.soldOut = phaseOf(soldOut, inSoldOut ? (end - sellingEnd) / 1000 : 0);
    if (sellingEndedBy) run.sellingEndedBy = sellingEndedBy;
  }
  if (!o.quiet) {
    const codes = Object.entries(answers)
      .map(([code, k]) => `${code}×${k}`)
      .join(' ');
    const phases = run.selling
      ? ` selling ${run.selling.attempts} in ${run.selling.seconds} s (${run.selling.rate}/s, p99 ${run.selling.p99}),` +
        ` sold out ${run.soldOut!.attempts} in ${run.soldOut!.seconds} s (${run.soldOut!.rate}/s, p99 ${run.soldOut!.p99});`
      : '';
    console.log(
      `${o.name}:${phases} whole ${run.whole.attempts} in ${run.whole.seconds} s, ${run.whole.rate}/s` +
        ` (load ${loadavg()[0]!.toFixed(1)}), p50 ${run.whole.p50} p99 ${run.whole.p99} ms; ${codes}`,
    );
  }
  return run;
}
