export type { DeadLetterEvent, InternalHandler } from './delivery/index.ts';
export type { InboundCheck } from './deps.ts';
export type { DeadLetter } from './dlq/index.ts';
export { createWal, type WalModule } from './module.ts';
export type { Namespace, Target } from './namespaces/namespace.ts';
export { systemNamespacesHook } from './namespaces/system-namespaces.ts';
export type { MessageInput, OutboxReceipt } from './write/index.ts';
