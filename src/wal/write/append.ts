import type { Kysely } from 'kysely';
import {
  type GroupCommitter,
  isUnavailable,
  type NewMessageRow,
  type WriteOutcome,
} from '../backends/postgres/group-commit.ts';
import { BackendTimeoutError, bounded } from '../backends/stream/bounded.ts';
import {
  BackendUnavailableError,
  backendUnavailable,
  NamespaceRetiredError,
  type StreamBackend,
  type StreamBackendName,
} from '../backends/stream/contract.ts';
import type { Namespace } from '../namespaces/index.ts';
import type { BackendName, WalTables } from '../tables.ts';
import { type InlineDelivery, inlineTargets, writeInline } from './inline-delivery.ts';
import { type Reread, rereadNamespace } from './reread-namespace.ts';

/** The stream backends this process has (configured through REDIS_URL and NATS_URL). */
export type StreamBackends = ReadonlyMap<StreamBackendName, StreamBackend>;

/** Writes rows to a namespace's backend; see createAppender. */
export type Appender = (namespace: Namespace, rows: NewMessageRow[]) => Promise<WriteOutcome[]>;

/** The server of a backend cannot be reached (a PostgreSQL connection error, or a stream backend's own). */
export function isBackendUnavailable(error: unknown): boolean {
  return error instanceof BackendUnavailableError || isUnavailable(error);
}

/** Rounds of reading the namespace again after a stream backend refused it as retired. */
const RETIRED_ROUNDS = 3;

/**
 * How long a write waits for a stream backend's answer, by default: a Redis command has no timeout
 * of its own, and a Redis that takes the connection and falls silent would hold the write (and
 * its caller) for as long as it hangs. Above NATS's own per-publish timeout (2 s): a batch of
 * 1,000 messages, or of large ones, has time to be answered.
 */
export const WRITE_BACKEND_TIMEOUT_MS = 5_000;

export type AppenderOptions = {
  /** How long a stream backend's append is waited for. (Default: WRITE_BACKEND_TIMEOUT_MS) */
  backendTimeoutMs?: number;
};

/**
 * The write path of POST /wal/write: rows go to the namespace's backend (postgres through the
 * group committer, or in a transaction of their own that delivers them to the namespace's inline
 * targets when it has any: inline-delivery.ts; the others through their append); when that backend is down or not
 * configured and the namespace has a fallback, to the fallback, and each receipt's `backend`
 * says which took it; with no usable fallback, 503 BACKEND_UNAVAILABLE with Retry-After.
 * A messageId is idempotent per backend: a retry that lands on the fallback is a new message there.
 * A write a backend was sent and never confirmed (BackendTimeoutError: a NATS publish whose ack
 * was lost, a Redis script whose connection dropped after it was written) is not handed to the
 * fallback, as it may be stored: 503, and the writer retries. So is one that gave no answer
 * within `backendTimeoutMs` (a silent Redis): the append is bounded.
 *
 * A stream backend that refuses the namespace as retired (it moved off that backend, which then
 * ran empty: backends/stream/prune.ts) means the namespace was read before it moved: with
 * `reread`, it is read again (the cached copy dropped), refused as a first write would be (deleted,
 * suspended, disabled: reread-namespace.ts), and the rows go where it names now; when it names that
 * backend again (it moved back), the backend is reopened to it first. Only the rows the backend did
 * not store go: a retire can land in the middle of a NATS batch, whose first messages stay there
 * (NamespaceRetiredError.stored), answered as that backend's, each message written once.
 */
export function createAppender(
  committer: GroupCommitter,
  streams: StreamBackends,
  inline?: { db: Kysely<WalTables>; delivery: InlineDelivery | undefined },
  reread?: Reread,
  options: AppenderOptions = {},
): Appender {
  const timeoutMs = options.backendTimeoutMs ?? WRITE_BACKEND_TIMEOUT_MS;
  async function appendTo(
    namespace: Namespace,
    backend: BackendName,
    rows: NewMessageRow[],
  ): Promise<WriteOutcome[]> {
    const own = rows.map((row) => (row.backend === backend ? row : { ...row, backend }));
    if (backend === 'postgres') {
      const targets = inlineTargets(inline?.delivery, namespace);
      if (inline?.delivery && targets.length > 0)
        return writeInline(inline.db, inline.delivery, namespace, targets, own);
      return committer.submit(own);
    }
    const stream = streams.get(backend);
    if (!stream) {
      const setting = backend === 'redis-streams' ? 'REDIS_URL' : 'NATS_URL';
      throw new BackendUnavailableError(backend, `${backend} is not configured on this server (${setting})`);
    }
    // Bounded: past it BackendTimeoutError (sent, no answer: 503 below, never the fallback).
    return bounded(stream, 'append', timeoutMs, () => stream.append(own));
  }

  async function appendOnce(namespace: Namespace, rows: NewMessageRow[]): Promise<WriteOutcome[]> {
    const tried: string[] = [];
    for (const backend of [namespace.backend, namespace.fallbackBackend]) {
      if (backend === null) continue;
      try {
        return await appendTo(namespace, backend, rows);
      } catch (error) {
        // Sent, and not answered: stored there or not, nobody knows. Never to the fallback, where
        // the same messages would be stored (and delivered) a second time: the writer retries,
        // and a retry with the same messageIds finds there those that were stored (a replay).
        if (error instanceof BackendTimeoutError)
          throw backendUnavailable(
            `backend ${backend} of namespace ${namespace.name} did not confirm this write (it may have stored it); retry with the same messageId`,
            { backends: [`${backend}: ${error.message}`] },
            error,
          );
        if (!isBackendUnavailable(error)) throw error;
        tried.push(`${backend}: ${(error as Error).message}`);
      }
    }
    const fallback = namespace.fallbackBackend ? ` and its fallback ${namespace.fallbackBackend}` : '';
    throw backendUnavailable(
      `backend ${namespace.backend}${fallback} of namespace ${namespace.name} cannot take writes now; retry shortly`,
      { backends: tried },
    );
  }

  return async (namespace, rows) => {
    let current = namespace;
    // The answer, by row: filled in as backends take them.
    const outcomes: WriteOutcome[] = new Array(rows.length);
    // The rows (their indexes) still to write.
    let left = rows.map((_, i) => i);
    for (let round = 1; ; round++) {
      try {
        const answered = await appendOnce(
          current,
          left.map((i) => rows[i]!),
        );
        left.forEach((i, j) => {
          outcomes[i] = answered[j]!;
        });
        return outcomes;
      } catch (error) {
        if (!(error instanceof NamespaceRetiredError)) throw error;
        // A retire that came in the middle of the append (a NATS batch publishes one message
        // after another): what the backend stored all the same stays there, delivered by its
        // consumers draining it, and is answered as it is; only the rest is written again.
        left = left.filter((i, j) => {
          const stored = error.stored[j];
          if (stored) outcomes[i] = stored;
          return !stored;
        });
        if (left.length === 0) return outcomes;
        if (!reread || round >= RETIRED_ROUNDS) {
          throw backendUnavailable(
            `namespace ${current.name} moved off ${error.backend} while this write was under way; retry shortly`,
            {},
            error,
          );
        }
        current = await rereadNamespace(reread, streams.get(error.backend), current, error);
      }
    }
  };
}
