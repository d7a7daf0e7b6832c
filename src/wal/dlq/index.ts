export { dlqRoutes } from './dlq-routes.ts';
export {
  type AttemptView,
  type DeadLetter,
  type DeadLetterCursor,
  type DeadLetterFilter,
  discardDeadLetter,
  getDeadLetter,
  listDeadLetters,
  requeueDeadLetters,
} from './dlq-store.ts';
