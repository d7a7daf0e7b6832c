import type { MessageState } from '../../tables.ts';

/** A message handed to a consumer under a lease; `leaseToken` fences its complete or fail. */
export type LeasedMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  orderingKey: string | null;
  payload: unknown;
  headers: Record<string, string>;
  attempts: number;
  maxAttempts: number;
  targetsDone: string[];
  leaseToken: string;
  leaseExpiresAt: Date;
  dueAt: Date;
  createdAt: Date;
};

/** One target's part of a delivery attempt, recorded in wal.attempts when the fence holds. */
export type AttemptRecord = {
  target: string;
  startedAt: Date;
  finishedAt: Date;
  outcome: 'delivered' | 'failed' | 'dead' | 'skipped';
  statusCode?: number | undefined;
  error?: string | undefined;
};

export type Completion = {
  id: string;
  leaseToken: string;
  targetsDone: string[];
  attempts?: AttemptRecord[];
};

export type Failure = {
  id: string;
  leaseToken: string;
  error: string;
  /** When the target said when to retry (Retry-After); else the namespace's policy decides. */
  retryAfterMs?: number | undefined;
  /** Non-retryable: straight to the dead letters. */
  dead?: boolean | undefined;
  /** Attempts in all, instead of the message's own (Mercato's policy for its own targets). */
  maxAttempts?: number | undefined;
  targetsDone: string[];
  attempts?: AttemptRecord[];
};

/** What a fenced update came to: `updated` rows passed the fence; `stale` ids held an old lease. */
export type FenceResult<R> = { updated: R[]; stale: string[] };

export type FailedMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  state: Extract<MessageState, 'retrying' | 'dead'>;
  attempts: number;
  lastError: string;
  dueAt: Date;
};
