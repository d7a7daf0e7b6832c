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

/** Logs each message of `failed` that went to the dead letters and passes it to `onDeadLetter`. */
export async function publishDeadLetters(
  failed: FailedMessage[],
  log: Logger,
  onDeadLetter: ((event: DeadLetterEvent) => void | Promise<void>) | undefined,
): Promise<void> {
  for (const message of failed) {
    if (message.state !== 'dead') continue;
    const event: DeadLetterEvent = {
      type: 'wal.message.dead-lettered',
      tenantId: message.tenantId,
      namespace: message.namespace,
      messageId: message.messageId,
      deliveryId: message.id,
      attempts: message.attempts,
      error: message.lastError,
    };
    log.warn(event, 'message dead-lettered');
    try {
      await onDeadLetter?.(event);
    } catch (error) {
      log.error({ err: error, messageId: message.messageId }, 'onDeadLetter failed');
    }
  }
}
