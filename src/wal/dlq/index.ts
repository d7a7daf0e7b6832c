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
  recordDeadLetter,
  requeueDeadLetters,
} from './dlq-store.ts';
