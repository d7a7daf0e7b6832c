import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection, QueuedIterator, Status } from '@nats-io/transport-node';
import { BackendTimeoutError } from '../stream/bounded.ts';
import { BackendUnavailableError } from '../stream/contract.ts';
import { bucketName, type NamespaceNames } from './names.ts';
import { isUnavailable, unavailable, withTimeout } from './state.ts';

export type CoreOptions = { prefix: string; replicas: number; timeoutMs: number };

/** What the backend and its consumers share: the connection, JetStream handles, the KV bucket, known streams. */
export type Core = {
  nc: NatsConnection;
  js: JetStreamClient;
  options: CoreOptions;
  /** Throws BackendUnavailableError while the connection is closed or reconnecting. */
  assertConnected(): void;
  jsm(): Promise<JetStreamManager>;
  kv(): Promise<KV>;
  /** Creates the namespace's stream on first use (cached once it exists). */
  ensureStream(names: NamespaceNames): Promise<void>;
  /** Forgets that the namespace's stream exists (it was deleted): the next write creates it again. */
  forgetStream(names: NamespaceNames): void;
  /**
   * Runs `fn`, turning connection failures and timeouts into BackendUnavailableError; a call still
   * running when the connection drops fails at once (its requests' answers are lost with it).
   * With `noAnswer`, a timeout (the connection up, the server silent) throws BackendTimeoutError
   * instead (bounded.ts: no answer is no outage), and so does a lost connection once `sent()` (a
   * write sent, its answer awaited): what was sent may be stored, and may be written nowhere else.
   */
  guard<T>(
    what: string,
    fn: () => Promise<T>,
    options?: { noAnswer?: true; sent?: () => boolean },
  ): Promise<T>;
  close(): void;
};

/** Caches a promise; a rejected one is dropped so that the next call tries again; reset() drops it too. */
function once<T>(make: () => Promise<T>): (() => Promise<T>) & { reset(): void } {
  let cached: Promise<T> | undefined;
  const get = () => {
    if (!cached) {
      cached = make();
      cached.catch(() => {
        cached = undefined;
      });
    }
    return cached;
  };
  return Object.assign(get, {
    reset() {
      cached = undefined;
    },
  });
}

export function createCore(nc: NatsConnection, options: CoreOptions): Core {
  const js = jetstream(nc, { timeout: options.timeoutMs });
  let disconnected = false;
  /** Fails a guarded call in flight (see guard), one entry per call; emptied when the connection drops. */
  const inFlight = new Set<() => void>();
  const status = nc.status() as QueuedIterator<Status>;

  const jsm = once(() => jetstreamManager(nc, { timeout: options.timeoutMs, checkAPI: false }));
  const kv = once(async () => {
    const kvm = new Kvm(js);
    const name = bucketName(options.prefix);
    try {
      return await kvm.create(name, {
        history: 1,
        storage: StorageType.File,
        replicas: options.replicas,
        timeout: options.timeoutMs,
      });
    } catch (err) {
      // Exists with other settings (created elsewhere): use it as it is.
      if (isUnavailable(err)) throw err;
      return kvm.open(name, { timeout: options.timeoutMs });
    }
  });
  const streams = new Map<string, Promise<void>>();
  void (async () => {
    for await (const s of status) {
      if (s.type === 'disconnect' || s.type === 'reconnecting') {
        disconnected = true;
        // What was sent on the lost connection gets no answer (the server keeps no replies for a
        // client that left): each call waiting for one fails now, not after its timeouts (up to
        // 3 × timeoutMs), which may come after the reconnect: a write begun before the outage
        // would then go to the fallback while NATS is back and /health/ready says so.
        for (const abandon of inFlight) abandon();
        inFlight.clear();
      } else if (s.type === 'reconnect') {
        disconnected = false;
        // The server may have restarted without its JetStream state: check the bucket and
        // each stream again on next use instead of trusting what was made before.
        streams.clear();
        kv.reset();
      }
    }
  })().catch(() => {});

  const assertConnected = () => {
    if (nc.isClosed() || nc.isDraining()) {
      throw new BackendUnavailableError('nats-jetstream', 'the NATS connection is closed');
    }
    if (disconnected)
      throw new BackendUnavailableError('nats-jetstream', 'the NATS connection is reconnecting');
  };

  const addStream = async (names: NamespaceNames) => {
    const m = await jsm();
    try {
      await m.streams.info(names.stream);
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 404 && !/not found/i.test(String((err as Error).message)))
        throw err;
    }
    try {
      await m.streams.add({
        name: names.stream,
        subjects: [names.subjects],
        storage: StorageType.File,
        num_replicas: options.replicas,
        // Work queue: a message acknowledged (delivered or dead) leaves the stream.
        retention: 'workqueue',
        duplicate_window: 120 * 1_000_000_000,
      });
    } catch (err) {
      // Created meanwhile by another process: fine.
      if (!/already in use|already exists/i.test(String((err as Error).message))) throw err;
    }
  };

  return {
    nc,
    js,
    options,
    assertConnected,
    jsm,
    kv,
    ensureStream(names) {
      let p = streams.get(names.stream);
      if (!p) {
        p = addStream(names);
        streams.set(names.stream, p);
        p.catch(() => streams.delete(names.stream));
      }
      return p;
    },
    forgetStream(names) {
      streams.delete(names.stream);
    },
    async guard(what, fn, guardOptions) {
      assertConnected();
      let abandon = () => {};
      const lost = new Promise<never>((_, reject) => {
        abandon = () =>
          reject(new BackendUnavailableError('nats-jetstream', `${what}: the NATS connection was lost`));
      });
      inFlight.add(abandon);
      // Settled: the error is fn's own (append throws BackendTimeoutError itself for a publish
      // with no answer, and a server's refusal as it is); unsettled: the guard gave up on it.
      let settled = false;
      const work = fn().finally(() => {
        settled = true;
      });
      try {
        return await Promise.race([withTimeout(work, options.timeoutMs * 3, what), lost]);
      } catch (err) {
        const lostAfterSending = !settled && guardOptions?.sent?.() === true;
        const silent = guardOptions?.noAnswer && (err as Error | undefined)?.name === 'TimeoutError';
        if (lostAfterSending || silent) {
          const detail = err instanceof Error ? err.message : String(err);
          throw new BackendTimeoutError('nats-jetstream', `${what}: no answer (${detail})`, { cause: err });
        }
        if (err instanceof BackendTimeoutError) throw err;
        if (isUnavailable(err)) throw unavailable(err, what);
        throw err;
      } finally {
        inFlight.delete(abandon);
      }
    },
    close() {
      status.stop();
    },
  };
}
