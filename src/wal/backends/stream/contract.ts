import { AppError } from '../../../platform/http/index.ts';
import type { Logger } from '../../../platform/observability/index.ts';
import type { Namespace } from '../../namespaces/namespace.ts';
import type { MessageState } from '../../tables.ts';
import type { NewMessageRow, WriteOutcome } from '../postgres/group-commit.ts';
import type { AttemptRecord } from '../postgres/queue.ts';

export type { AttemptRecord, NewMessageRow, WriteOutcome };

/** The backends that keep their log outside PostgreSQL. */
export type StreamBackendName = 'redis-streams' | 'nats-jetstream';

/**
 * A message as a stream backend stores and hands it out: the row a write prepared (see
 * write/prepare.ts toRows) plus its delivery state. `id` (UUIDv7) is the stable delivery id.
 */
export type StreamMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  key: string | null;
  /** JSON text. */
  payload: string;
  /** JSON text of Record<string, string>. */
  headers: string;
  requestHash: string;
  /** Epoch ms: never delivered before. */
  dueAt: number;
  /** Epoch ms of the first write. */
  createdAt: number;
  maxAttempts: number;
  /** Attempts made so far (0 before the first delivery). */
  attempts: number;
  /** Targets (by name) already reached; a retry skips them. */
  targetsDone: string[];
};

/** Every attempt to every target, oldest first (what GET /wal/messages shows as history). */
export type AttemptHistory = Array<AttemptRecord & { attempt: number }>;

/** What a backend answers for GET /wal/messages/{id}. */
export type StreamMessageView = {
  message: StreamMessage;
  state: MessageState;
  backend: StreamBackendName;
  lastError: string | null;
  deliveredAt: number | null;
  deadAt: number | null;
  history: AttemptHistory;
};

/**
 * What one delivery attempt came to, decided by the WAL (targets, retry policy, maxAttempts):
 * the backend only applies it.
 * - ack: every target is done; mark delivered (keep the state for deliveredRetentionSeconds).
 * - retry: hand the message out again no sooner than `delayMs` from now, with `targetsDone`.
 * - dead: the WAL already wrote the dead letter to PostgreSQL; remove it from the backend's
 *   queue and mark its state dead.
 * `attempts` are this attempt's records, to append to the message's history.
 */
export type Decision =
  | { action: 'ack'; targetsDone: string[]; attempts: AttemptRecord[] }
  | { action: 'retry'; delayMs: number; error: string; targetsDone: string[]; attempts: AttemptRecord[] }
  | { action: 'dead'; error: string; targetsDone: string[]; attempts: AttemptRecord[] };

/** What the WAL gives a backend's consumer. */
export type StreamConsumerDeps = {
  logger: Logger;
  /** Enabled namespaces this backend serves (its own, and those it is the fallback of); re-read on `onNamespacesChanged`. */
  namespaces(): Promise<Namespace[]>;
  onNamespacesChanged(listener: () => void): () => void;
  /**
   * Delivers a message whose `attempts` the backend already counted up (1 on the first
   * delivery) and whose due time has come; `history` is what came before. Never throws.
   */
  deliver(namespace: Namespace, message: StreamMessage, history: AttemptHistory): Promise<Decision>;
  /** How long a consumer holds a message before another may take it over (XAUTOCLAIM idle, AckWait). */
  leaseMs: number;
};

export type StreamConsumer = { stop(): Promise<void> };

/**
 * A log engine other than PostgreSQL. One behaviour: durable appends idempotent per
 * (tenant, namespace, messageId); delayed messages never handed out early; at least once with a
 * stable id; messages with the same key handed out in order (a later one waits while an earlier
 * one is in flight or waiting to be retried); a delivery whose consumer died handed out again
 * after `leaseMs`.
 */
export interface StreamBackend {
  readonly name: StreamBackendName;
  /**
   * Makes the rows durable, all or nothing, and answers once they are. A messageId already stored
   * with the same requestHash answers its first outcome (`replayed: true`) and writes nothing;
   * with another hash throws idempotencyConflict(messageIds) (409) and writes nothing. `revive`
   * (the relay of a requeued dead letter) puts a dead message with the same hash back in the
   * queue with attempts reset. Throws BackendUnavailableError when the server cannot be reached
   * (nothing stored), BackendTimeoutError (bounded.ts) when it was sent rows and gave no answer
   * (stored or not: never written elsewhere), and NamespaceRetiredError when the namespace is retired here (see `retire`): that one says
   * which rows the backend holds all the same (a retire that came in the middle of the append).
   */
  append(rows: NewMessageRow[], options?: { revive?: boolean }): Promise<WriteOutcome[]>;
  /** A message by (tenant, namespace, messageId), or undefined. */
  find(tenantId: string, namespace: string, messageId: string): Promise<StreamMessageView | undefined>;
  /** Starts delivering the namespaces deps.namespaces() names. */
  consume(deps: StreamConsumerDeps): Promise<StreamConsumer>;
  /** Messages waiting (due or not, not yet delivered) and the age in ms of the oldest due one. */
  lag(): Promise<{ messages: number; oldestMs: number }>;
  /** Throws when the server cannot be reached (for /health/ready and fallback decisions). */
  ping(): Promise<void>;
  /**
   * Deletes everything the backend holds for a namespace: its messages, their state and history,
   * its queues. For a namespace being deleted; throws BackendUnavailableError when the server
   * cannot be reached. `onlyRetired`: only when the namespace is retired here (see `retire`; the
   * fence and what it kept of a backend the namespace was pruned from), else nothing. `createdAt`:
   * the deleted namespace's, so that a backend that fences the name for a while (redis-streams'
   * drop marker) lets a namespace made again under the name through.
   */
  drop(
    tenantId: string,
    namespace: string,
    options?: { onlyRetired?: boolean; createdAt?: string },
  ): Promise<void>;
  /**
   * Calls `onMessage` with each message of the namespace queued from now on, for `mercato wal
   * tail` (a delayed one when it falls due on redis-streams, when written on nats-jetstream; a
   * retry may show a message again). Throws BackendUnavailableError when the server cannot be
   * reached.
   */
  follow(
    tenantId: string,
    namespace: string,
    onMessage: (message: StreamMessage) => void,
  ): Promise<{ stop(): Promise<void> }>;
  /**
   * Closes the namespace on this backend, for a namespace that moved off it (prune.ts): when the
   * backend holds nothing of it still to deliver (nothing queued, delayed, retrying, parked or in
   * flight; each backend says how it knows), it refuses, atomically with that check, every later
   * append of the namespace (NamespaceRetiredError) until `reopen`, and answers true; otherwise it
   * changes nothing and answers false. What it kept of messages already finished (delivered, dead)
   * is let go. Throws BackendUnavailableError when the server cannot be reached.
   *
   * `signal`: the caller gave up waiting (prune.ts bounds the call, its transaction open, and goes
   * on without it). A retire of several steps (NATS) takes none after it that closes the namespace
   * or lets go of its states, only the putting back of what it changed itself: once the caller's
   * row lock is gone, a reopen may come in between.
   */
  retire(tenantId: string, namespace: string, options?: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * Takes appends of a retired namespace again (it names this backend again). Only under a share
   * lock on the namespace's row that saw it name this backend (reopenIfNamed in prune.ts), so that
   * no prune retires it meanwhile.
   */
  reopen(tenantId: string, namespace: string): Promise<void>;
  /** Closes what the backend opened itself (not ctx.redis / ctx.nats, which the platform owns). */
  close(): Promise<void>;
}

/**
 * The backend closed the namespace to writes (StreamBackend.retire): the namespace moved off it.
 * The writer read the namespace before it moved: it reads it again and writes where it names.
 *
 * `stored` answers, by the index of each row the append was given, the outcome of a row the
 * backend holds nonetheless (stored before the retire, or already there: a replay), and undefined
 * for one it did not take. Only those are written again elsewhere: the others are delivered (or
 * were) by the consumers still draining the backend, and written again they would be delivered
 * twice. A NATS batch publishes its messages one after another and a retire can land between two
 * of them; a Redis append of one namespace is one script, all or nothing.
 */
export class NamespaceRetiredError extends Error {
  override readonly name = 'NamespaceRetiredError';
  readonly backend: StreamBackendName;
  readonly tenantId: string;
  readonly namespace: string;
  readonly stored: ReadonlyArray<WriteOutcome | undefined>;
  constructor(
    backend: StreamBackendName,
    tenantId: string,
    namespace: string,
    stored: ReadonlyArray<WriteOutcome | undefined> = [],
  ) {
    super(`namespace ${namespace} moved off ${backend}, which takes no more writes of it`);
    this.backend = backend;
    this.tenantId = tenantId;
    this.namespace = namespace;
    this.stored = stored;
  }
}

/** The backend's server cannot be reached: the write goes to the fallback or answers 503. */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
  readonly backend: StreamBackendName;
  constructor(backend: StreamBackendName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.backend = backend;
  }
}

/** How long a caller is told to wait before retrying what a backend outage refused. */
const RETRY_AFTER_SECONDS = 5;

/** 503 BACKEND_UNAVAILABLE with Retry-After: what a caller gets when a backend it needs is down. */
export function backendUnavailable(
  message: string,
  extras: Record<string, unknown> = {},
  cause?: unknown,
): AppError {
  return new AppError(
    'BACKEND_UNAVAILABLE',
    message,
    { retryAfterSeconds: RETRY_AFTER_SECONDS, ...extras },
    cause === undefined ? undefined : { cause },
  );
}

/** The stream message of a prepared row (before its first delivery). */
export function streamMessageOf(row: NewMessageRow): StreamMessage {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    namespace: row.namespace,
    messageId: row.message_id,
    key: row.ordering_key,
    payload: row.payload,
    headers: row.headers,
    requestHash: row.request_hash,
    dueAt: row.due_at.getTime(),
    createdAt: row.created_at.getTime(),
    maxAttempts: row.max_attempts,
    attempts: 0,
    targetsDone: [],
  };
}

/** The write outcome of a stored stream message. */
export function outcomeOf(
  message: StreamMessage,
  backend: StreamBackendName,
  state: MessageState,
  replayed: boolean,
): WriteOutcome {
  return {
    replayed,
    message: {
      id: message.id,
      tenantId: message.tenantId,
      namespace: message.namespace,
      messageId: message.messageId,
      requestHash: message.requestHash,
      backend,
      state,
      dueAt: new Date(message.dueAt),
      createdAt: new Date(message.createdAt),
    },
  };
}
