import type { KV, KvEntry } from '@nats-io/kv';
import type { MessageState } from '../../tables.ts';
import {
  type AttemptHistory,
  type AttemptRecord,
  BackendUnavailableError,
  type StreamMessage,
  type StreamMessageView,
} from '../stream/contract.ts';

/** How many attempt records a message keeps (the oldest are dropped). */
export const HISTORY_CAP = 100;

/** An attempt record as JSON stores it (dates as ISO text). */
type StoredAttempt = Omit<AttemptRecord, 'startedAt' | 'finishedAt'> & {
  startedAt: string;
  finishedAt: string;
  attempt: number;
};

/** A message's state, one KV entry per message (JSON). */
export type StoredState = {
  message: StreamMessage;
  state: MessageState;
  lastError: string | null;
  deliveredAt: number | null;
  deadAt: number | null;
  /** Epoch ms: a retry is not handed out before (guards a crash between the state write and the nak). */
  retryAt: number | null;
  history: StoredAttempt[];
  /** Fences the decision of a delivery: only the holder of the current token may apply one. */
  leaseToken: string | null;
  /** The stream message was acknowledged by JetStream (a replay of an unpublished one publishes it). */
  published: boolean;
  /** Bumped by a revive; the stream message carries it, so an older copy is dropped. */
  generation: number;
};

/** What a stream message carries: the state is in the KV, the message only points to it. */
export type Envelope = { key: string; id: string; generation: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}

/** A live entry (not a delete marker) and its state. */
export function liveState(entry: KvEntry | null): { state: StoredState; revision: number } | undefined {
  if (entry?.operation !== 'PUT') return undefined;
  return { state: decodeJson<StoredState>(entry.value), revision: entry.revision };
}

export async function readState(kv: KV, key: string) {
  return liveState(await kv.get(key));
}

export function newState(message: StreamMessage, state: MessageState): StoredState {
  return {
    message,
    state,
    lastError: null,
    deliveredAt: null,
    deadAt: null,
    retryAt: null,
    history: [],
    leaseToken: null,
    published: false,
    generation: 0,
  };
}

export function historyOf(state: StoredState): AttemptHistory {
  return state.history.map((a) => ({
    ...a,
    startedAt: new Date(a.startedAt),
    finishedAt: new Date(a.finishedAt),
  }));
}

export function appendHistory(
  state: StoredState,
  attempt: number,
  records: AttemptRecord[],
): StoredAttempt[] {
  const added = records.map((r) => ({
    ...r,
    startedAt: new Date(r.startedAt).toISOString(),
    finishedAt: new Date(r.finishedAt).toISOString(),
    attempt,
  }));
  return [...state.history, ...added].slice(-HISTORY_CAP);
}

export function viewOf(stored: StoredState): StreamMessageView {
  return {
    message: stored.message,
    state: stored.state,
    backend: 'nats-jetstream',
    lastError: stored.lastError,
    deliveredAt: stored.deliveredAt,
    deadAt: stored.deadAt,
    history: historyOf(stored),
  };
}

/** True for a KV/stream write refused because the entry changed since it was read (CAS). */
export function isWrongRevision(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 10071 || /wrong last sequence/i.test(String((err as Error)?.message));
}

const UNAVAILABLE = new Set([
  'TimeoutError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'ConnectionError',
  'NoRespondersError',
  'RequestError',
  'JetStreamNotEnabled',
  'BackendUnavailableError',
]);

/** Errors that mean the server cannot be reached (or JetStream cannot answer). */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (UNAVAILABLE.has(err.name) || UNAVAILABLE.has(err.constructor.name)) return true;
  const code = (err as { code?: unknown }).code;
  return code === 503 || code === 408 || /timeout|timed out|closed|disconnect/i.test(err.message);
}

export function unavailable(err: unknown, what: string): BackendUnavailableError {
  if (err instanceof BackendUnavailableError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new BackendUnavailableError('nats-jetstream', `${what}: ${detail}`, { cause: err });
}

/** Rejects with a TimeoutError-named error after `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} timed out after ${ms} ms`);
      err.name = 'TimeoutError';
      reject(err);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
