import { recordAudit } from './audit.ts';
import { auditEntries } from './capture-audit.ts';
import { prepare } from './capture-prepare.ts';
import { write } from './capture-store.ts';
import type { Classification } from './classify.ts';
import { createDeadLetterCapture, type SweepOptions, type SweepResult } from './dead-letters.ts';
import type { ExceptionsDeps } from './deps.ts';
import { toView, type ViewedRow } from './exception-view.ts';
import { creditGroups } from './group-credits.ts';
import { checkInbound } from './inbound.ts';
import { EXCEPTION_EVENTS, publishExceptionEvents } from './outbound-events.ts';
import { captureSubscribers } from './subscribers.ts';
import type { ExceptionsTrx, InterfaceType, SourceRef } from './tables.ts';

/** One failure to capture: a report of an exception, new or repeated (by transaction id). */
export type CaptureInput = {
  /** Unique per tenant: a repeat updates the same exception. */
  transactionId: string;
  /** OrderRejected, ..., mercato.order.rejected, wal.message.dead-lettered. */
  eventType: string;
  interfaceType: InterfaceType;
  operation: string;
  reason: string;
  externalId?: string | null | undefined;
  customerId?: string | null | undefined;
  locationCode?: string | null | undefined;
  orderId?: string | null | undefined;
  /** Money at stake, minor units of `currency`. */
  amount?: number | null | undefined;
  currency?: string | null | undefined;
  correlationId?: string | null | undefined;
  causationId?: string | null | undefined;
  sourceRef: SourceRef;
  /** The event's own data as it arrived (searchable). */
  payload?: unknown;
  /** When it was reported (the WAL message's time, a dead letter's death): first and last seen. Default: now. */
  seenAt?: Date | string | undefined;
  /** What Mercato knows of its own failure, over the defaults (the tenant's rules still apply). */
  preset?: Partial<Classification> | undefined;
};

/** Captures exceptions in the caller's transaction of the tenant. */
export type CaptureMany = (
  trx: ExceptionsTrx,
  tenantId: string,
  inputs: CaptureInput[],
) => Promise<ViewedRow[]>;

export type Capture = {
  captureMany: CaptureMany;
  /** Declares the subscribers, the inbound check and the dead-letter listener: before the WAL starts. */
  subscribe(): void;
  /** Starts the dead-letter sweep (at once, then every 30 s). */
  start(): void;
  stop(): Promise<void>;
  /** One sweep of dead letters the listener missed: how many it captured, and the tenants that failed. */
  sweepDeadLetters(options?: SweepOptions): Promise<SweepResult>;
};

/**
 * Capture: classification by the tenant's rules (read once), grouping, the upsert by transaction
 * id, the audit, ExceptionCaptured and the alert hook, for a whole batch in a constant number of
 * statements (the WAL hands a subscriber's deliveries over in batches: handleMany): rules, groups,
 * exceptions, audit, the outbox insert (at commit), the alerts' own, then the groups' counts.
 */
export function createCapture(deps: ExceptionsDeps): Capture {
  const captureMany: CaptureMany = async (trx, tenantId, inputs) => {
    if (inputs.length === 0) return [];
    const byTx = await prepare(trx, inputs);
    const pending = [...byTx.values()];
    const rows = await write(trx, tenantId, pending);
    await recordAudit(trx, auditEntries(tenantId, rows, byTx));
    await publishExceptionEvents(
      deps.events,
      trx,
      tenantId,
      rows.map((row) => ({
        type: EXCEPTION_EVENTS.captured,
        subject: row.id,
        data: { ...toView(row), repeated: !row.inserted },
        meta: { correlationId: row.correlation_id ?? undefined },
      })),
    );
    const captured = rows.map(({ inserted: _, old_group_id: __, old_status: ___, ...row }) => row);
    await deps.hooks.onCaptured(trx, tenantId, captured);
    const repeats = rows.filter((row) => !row.inserted);
    await Promise.all(repeats.map((row) => deps.hooks.invalidatePayload(tenantId, row.transaction_id)));
    await creditGroups(trx, tenantId, rows, pending);
    return captured;
  };
  const deadLetters = createDeadLetterCapture(deps, captureMany);
  return {
    captureMany,
    subscribe() {
      deps.wal.acceptWrites('interface-exceptions', checkInbound);
      for (const subscriber of captureSubscribers(captureMany)) deps.events.subscribe(subscriber);
      deps.wal.onDeadLetter(deadLetters.listen);
    },
    start: () => deadLetters.start(),
    stop: () => deadLetters.stop(),
    sweepDeadLetters: (options) => deadLetters.sweep(options),
  };
}
