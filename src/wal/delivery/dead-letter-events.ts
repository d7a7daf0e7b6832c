import type { Logger } from '../../platform/observability/index.ts';
import type { FailedMessage } from '../backends/postgres/queue.ts';

/** Published (through onDeadLetter) each time a message moves to the dead letters. */
export type DeadLetterEvent = {
  type: 'wal.message.dead-lettered';
  tenantId: string;
  namespace: string;
  messageId: string;
  deliveryId: string;
  attempts: number;
  error: string;
};

/** The fields of a message moved to the dead letters that its event names. */
type DeadMessage = { tenantId: string; namespace: string; messageId: string; id: string; attempts: number };

/**
 * Logs one message moved to the dead letters and passes its event to `onDeadLetter` (whose
 * failure is logged: the message is dead-lettered whatever the listener does).
 */
export async function announceDeadLetter(
  message: DeadMessage,
  error: string,
  log: Logger,
  onDeadLetter: ((event: DeadLetterEvent) => void | Promise<void>) | undefined,
): Promise<void> {
  const event: DeadLetterEvent = {
    type: 'wal.message.dead-lettered',
    tenantId: message.tenantId,
    namespace: message.namespace,
    messageId: message.messageId,
    deliveryId: message.id,
    attempts: message.attempts,
    error,
  };
  log.warn(event, 'message dead-lettered');
  try {
    await onDeadLetter?.(event);
  } catch (err) {
    log.error({ err, messageId: message.messageId }, 'onDeadLetter failed');
  }
}

/** Announces each message of `failed` that went to the dead letters (announceDeadLetter). */
export async function publishDeadLetters(
  failed: FailedMessage[],
  log: Logger,
  onDeadLetter: ((event: DeadLetterEvent) => void | Promise<void>) | undefined,
): Promise<void> {
  for (const message of failed) {
    if (message.state === 'dead') await announceDeadLetter(message, message.lastError, log, onDeadLetter);
  }
}
