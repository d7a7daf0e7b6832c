import { connect, createServer, type Server, type Socket } from 'node:net';

export type TcpProxy = {
  port: number;
  /** The server behind is "down": every connection is cut and new ones are refused. */
  cut(): Promise<void>;
  /** Accepts and forwards again, on the same port. */
  restore(): Promise<void>;
  /**
   * The server behind "hangs": connections stay open (new ones are accepted) but nothing goes
   * through either way, as with a server stopped or a network dropping packets, until `release()`.
   */
  hold(): void;
  /**
   * Forwards what the client sends, but nothing the server answers, until `release()`: a request
   * reaches the server, which acts on it, and its answer is lost (an ack lost on the way back).
   */
  holdReplies(): void;
  /**
   * The connections open now go silent (nothing goes through either way, until `release()`), and
   * new ones are forwarded: a connection lost without a word (a NAT or firewall that dropped it),
   * the server well.
   */
  holdOpen(): void;
  /** Forwards again what was held, and what comes next (nothing when not holding). */
  release(): void;
  close(): Promise<void>;
};

type Pair = { client: Socket; upstream: Socket };

/** A loopback TCP proxy to `port`, to take a real server away from the app and give it back. */
export async function startTcpProxy(port: number, host = '127.0.0.1'): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const pairs = new Set<Pair>();
  // Silent since holdOpen(), until release().
  const silent = new Set<Pair>();
  let server: Server | undefined;
  let own = 0;
  let held = false;
  let heldReplies = false;

  const link = ({ client, upstream }: Pair) => {
    client.pipe(upstream);
    upstream.pipe(client);
  };
  const unlink = ({ client, upstream }: Pair) => {
    client.unpipe(upstream);
    upstream.unpipe(client);
    client.pause();
    upstream.pause();
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((client) => {
        const upstream = connect(port, host);
        const pair = { client, upstream };
        pairs.add(pair);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => socket.destroy());
        }
        if (held) unlink(pair);
        else if (heldReplies) {
          client.pipe(upstream);
          upstream.pause();
        } else link(pair);
        client.on('close', () => {
          upstream.destroy();
          pairs.delete(pair);
          silent.delete(pair);
        });
        upstream.on('close', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(own, '127.0.0.1', () => {
        own = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });

  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });

  await listen();
  return {
    get port() {
      return own;
    },
    cut: stop,
    restore: listen,
    hold() {
      held = true;
      for (const pair of pairs) unlink(pair);
    },
    holdOpen() {
      for (const pair of pairs) {
        if (silent.has(pair) || held) continue;
        silent.add(pair);
        unlink(pair);
      }
    },
    holdReplies() {
      if (held || heldReplies) return;
      heldReplies = true;
      for (const { client, upstream } of pairs) {
        upstream.unpipe(client);
        upstream.pause();
      }
    },
    release() {
      // Once only: linking a pair twice would pipe each chunk twice (every command sent twice).
      const wasSilent = new Set(silent);
      silent.clear();
      if (held) for (const pair of pairs) link(pair);
      else {
        for (const pair of wasSilent) if (pairs.has(pair)) link(pair);
        if (heldReplies) for (const pair of pairs) if (!wasSilent.has(pair)) pair.upstream.pipe(pair.client);
      }
      held = false;
      heldReplies = false;
    },
    close: stop,
  };
}
