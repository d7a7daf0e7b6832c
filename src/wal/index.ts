export type { DeadLetterEvent, InternalHandler } from './delivery/index.ts';
export type { InboundCheck } from './deps.ts';
export type { DeadLetter } from './dlq/index.ts';
export type { WalMessageState } from './dlq/message-state.ts';
export { createWal, type WalModule } from './module.ts';
export type { Namespace, Target } from './namespaces/namespace.ts';
export { systemNamespacesHook } from './namespaces/system-namespaces.ts';
// The HTTP targets' SSRF guard, for other modules that call tenant-configured URLs (exception sources).
export {
  createSsrfGuard,
  HostLookupError,
  REFUSED_MESSAGE,
  type SsrfGuard,
  SsrfRefusedError,
  UNRESOLVED_MESSAGE,
} from './targets/ssrf-guard.ts';
export type { MessageInput, OutboxReceipt } from './write/index.ts';
