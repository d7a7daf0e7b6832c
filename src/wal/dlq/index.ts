export { dlqRoutes } from './dlq-routes.ts';
export {
  type AttemptView,
  type DeadLetter,
  type DeadLetterCursor,
  type DeadLetterFilter,
  discardDeadLetter,
  type ExternalDeadLetter,
  getDeadLetter,
  listDeadLetters,
  listDeadSince,
  recordDeadLetter,
  requeueDeadLetters,
  type TenantDeadLetter,
} from './dlq-store.ts';
