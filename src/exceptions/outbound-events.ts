import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import type { ExceptionsTrx } from './tables.ts';

/** The collector's announcements, in the tenant's `exception-events` (tenants take them as webhooks). */
export const EXCEPTION_TOPIC = 'exception-events';

/** 000's outbound events, as CloudEvent types. */
export const EXCEPTION_EVENTS = {
  /** ExceptionCaptured: a new exception, or a repeat of one (data: the exception, `repeated`). */
  captured: 'mercato.exception.captured',
  /** ExceptionRetryCompleted: a retry finished (data: the exception and the attempt). */
  retryCompleted: 'mercato.exception.retry-completed',
  /** ExceptionResolved: resolved or closed by an operator (data: the exception). */
  resolved: 'mercato.exception.resolved',
  /** CriticalExceptionAlert: an alert rule fired (data: the alert, its team and the impact). */
  criticalAlert: 'mercato.exception.critical-alert',
} as const;

/** Publishes to the tenant's exception-events in trx, so the events commit with the change. */
export async function publishExceptionEvents(
  events: EventBus,
  trx: ExceptionsTrx,
  tenantId: string,
  list: DomainEvent[],
  meta?: EventMeta,
): Promise<void> {
  if (list.length === 0) return;
  await events.publish(trx, tenantId, EXCEPTION_TOPIC, list, meta);
}
