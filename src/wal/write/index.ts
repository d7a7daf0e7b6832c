export { messageRoutes } from './message-routes.ts';
export { type OutboxReceipt, writeMessages } from './outbox.ts';
export {
  canonicalJson,
  type MessageInput,
  requestHash,
  type WriteReceipt,
} from './prepare.ts';
export { type WriteRoutesOptions, writeRoutes } from './write-routes.ts';
export { MESSAGE_ID, MESSAGE_KEY } from './write-schemas.ts';
