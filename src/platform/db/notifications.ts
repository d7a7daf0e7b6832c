import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** Called with each NOTIFY payload on the channel. */
export type NotificationHandler = (payload: string) => void;
/** Called when notifications may have been missed (the listening connection dropped): drop what you cached. */
export type ResetHandler = () => void;

export type Listener = {
  listen(
    channel: string,
    onMessage: NotificationHandler,
    onReset?: ResetHandler,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
};

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

function checkChannel(channel: string) {
  if (!CHANNEL.test(channel)) throw new TypeError(`channel "${channel}" must be a lowercase SQL identifier`);
}

/**
 * LISTEN on PostgreSQL over one dedicated connection per process, opened on first use. When
 * it drops, every subscriber's onReset runs and it reconnects with backoff, listening again;
 * onReset runs once more when it listens again (what was cached in between is dropped too).
 */
export function postgresListener(connectionString: string): Listener {
  const subscribers = new Map<
    string,
    Set<{ onMessage: NotificationHandler; onReset?: ResetHandler | undefined }>
  >();
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let closed = false;
  let retryMs = 100;
  /** Whether the connection dropped since it last listened: its subscribers may have missed notifications. */
  let dropped = false;

  const reset = () => {
    for (const set of subscribers.values()) for (const s of set) s.onReset?.();
  };
  const connect = (): Promise<pg.Client> => {
    connecting ??= (async () => {
      const c = new pg.Client({ connectionString });
      const deliver = (n: pg.Notification) => {
        for (const s of subscribers.get(n.channel) ?? []) s.onMessage(n.payload ?? '');
      };
      // Held until it listens and has reset: a notification can arrive in the same read as the
      // last LISTEN's answer, before the code after it runs, and must not overtake the reset.
      let held: pg.Notification[] | undefined = [];
      c.on('notification', (n) => {
        if (held) held.push(n);
        else deliver(n);
      });
      c.on('error', () => {
        if (client !== c) return;
        client = undefined;
        connecting = undefined;
        dropped = true;
        reset();
        if (!closed) setTimeout(() => void reconnect(), retryMs).unref();
      });
      await c.connect();
      for (const channel of subscribers.keys()) await c.query(`listen ${channel}`);
      client = c;
      retryMs = 100;
      // Listening again: what was cached between the drop and now may predate a change whose
      // notification went to no one, so it is dropped once more.
      if (dropped) reset();
      dropped = false;
      const heard = held;
      held = undefined;
      for (const n of heard) deliver(n);
      return c;
    })();
    connecting.catch(() => {
      connecting = undefined;
    });
    return connecting;
  };
  const reconnect = async () => {
    try {
      await connect();
    } catch {
      retryMs = Math.min(retryMs * 2, 10_000);
      if (!closed) setTimeout(() => void reconnect(), retryMs).unref();
    }
  };

  return {
    async listen(channel, onMessage, onReset) {
      checkChannel(channel);
      const entry = { onMessage, onReset };
      const first = !subscribers.has(channel);
      const set = subscribers.get(channel) ?? new Set();
      set.add(entry);
      subscribers.set(channel, set);
      const c = await connect();
      if (first) await c.query(`listen ${channel}`);
      return async () => {
        set.delete(entry);
        if (set.size === 0) {
          subscribers.delete(channel);
          await client?.query(`unlisten ${channel}`).catch(() => {});
        }
      };
    },
    async close() {
      closed = true;
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}

/** LISTEN on PGlite: its own in-process notifications. */
export function pgliteListener(pglite: PGlite): Listener {
  return {
    async listen(channel, onMessage) {
      checkChannel(channel);
      return pglite.listen(channel, onMessage);
    },
    async close() {},
  };
}
