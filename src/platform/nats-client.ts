import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from './observability/index.ts';

/** A NATS connection that may not exist yet: NATS_URL was unreachable at start and is still being tried. */
export type NatsHandle = {
  /** The connection once made (at once when NATS answered at start). */
  current(): NatsConnection | undefined;
  /** Resolves with the connection when it is first made; never rejects. */
  ready: Promise<NatsConnection>;
  /** Stops trying (when still trying) and drains the connection (when there is one). */
  close(): Promise<void>;
};

const RETRY_MS = 2000;

/** `host:port` of a NATS URL list, for log lines (never credentials). */
function describe(url: string): string {
  return url
    .split(',')
    .map((u) => {
      try {
        const parsed = new URL(u.includes('://') ? u : `nats://${u}`);
        return `${parsed.hostname}:${parsed.port || '4222'}`;
      } catch {
        return 'NATS';
      }
    })
    .join(',');
}

/**
 * Connects to NATS. The connection reconnects for ever once made (maxReconnectAttempts -1). When
 * NATS cannot be reached at start the process does not wait or fail: one warning, then a new
 * attempt every 2 s in the background; `ready` resolves when one succeeds (one info line).
 */
export async function connectNats(url: string, logger: Logger): Promise<NatsHandle> {
  const { connect } = await import('@nats-io/transport-node');
  const where = describe(url);
  const attempt = () =>
    connect({ servers: url.split(','), name: 'mercato', maxReconnectAttempts: -1, timeout: 2000 });
  let connection: NatsConnection | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let resolveReady: (nc: NatsConnection) => void = () => {};
  const ready = new Promise<NatsConnection>((resolve) => {
    resolveReady = resolve;
  });
  const watch = (nc: NatsConnection) => {
    connection = nc;
    resolveReady(nc);
    // One line per change of state, not one per reconnect attempt.
    void (async () => {
      let down = false;
      for await (const s of nc.status()) {
        if ((s.type === 'disconnect' || s.type === 'reconnecting') && !down) {
          down = true;
          logger.warn(
            `NATS at ${where} is unreachable; nats-jetstream namespaces use their fallback or answer 503 until it returns`,
          );
        } else if (s.type === 'reconnect' && down) {
          down = false;
          logger.info(`NATS at ${where} is back`);
        }
      }
    })().catch(() => {});
  };
  try {
    watch(await attempt());
  } catch (error) {
    logger.warn(
      { err: (error as Error).message },
      `NATS at ${where} is unreachable at start; serving without it and retrying every ${RETRY_MS / 1000} s`,
    );
    const retry = () => {
      timer = setTimeout(async () => {
        if (closed) return;
        try {
          const nc = await attempt();
          if (closed) {
            await nc.close();
            return;
          }
          logger.info(`NATS at ${where} is reachable; nats-jetstream namespaces resume`);
          watch(nc);
        } catch {
          retry();
        }
      }, RETRY_MS);
      timer.unref();
    };
    retry();
  }
  return {
    current: () => connection,
    ready,
    async close() {
      closed = true;
      clearTimeout(timer);
      if (connection && !connection.isClosed()) await connection.drain().catch(() => connection?.close());
    },
  };
}
