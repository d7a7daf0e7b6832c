/**
 * What one delivery to one target came to. `retry` follows the namespace's retry policy
 * (or retryAfterMs when the target said when, e.g. Retry-After); `dead` goes straight to the
 * dead letters (a non-retryable failure); `disable` marks the target disabled (HTTP 410) and
 * counts as done for this message.
 */
export type TargetResult =
  | { outcome: 'delivered'; statusCode?: number }
  | { outcome: 'retry'; error: string; statusCode?: number; retryAfterMs?: number }
  | { outcome: 'dead'; error: string; statusCode?: number }
  | { outcome: 'disable'; error: string; statusCode?: number };

/** The message as targets see it. */
export type Delivery = {
  /** Stable across attempts: the message's internal id. */
  deliveryId: string;
  messageId: string;
  tenantId: string;
  namespace: string;
  key: string | null;
  payload: unknown;
  headers: Record<string, string>;
  attempt: number;
  createdAt: Date;
  /** When the message became due (its delay over); delivery latency is measured from here. */
  dueAt?: Date;
};

/** Runs the named internal handler for a delivery (the delivery engine owns the handlers and the inbox). */
export type InternalDispatch = (handler: string, delivery: Delivery) => Promise<TargetResult>;
