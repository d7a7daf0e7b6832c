export { messageRoutes } from './message-routes.ts';
export { type OutboxReceipt, writeMessages } from './outbox.ts';
export {
  canonicalJson,
  type MessageInput,
  requestHash,
  type WriteReceipt,
} from './prepare.ts';
export { MESSAGE_ID, MESSAGE_KEY, type WriteRoutesOptions, writeRoutes } from './write-routes.ts';
