// STUB (helper H4 replaces this file): alert rules and CriticalExceptionAlert.
import type { FastifyInstance } from 'fastify';
import type { ExceptionHooks, ExceptionsDeps } from './deps.ts';

export function createAlerts(_deps: ExceptionsDeps): {
  onCaptured: ExceptionHooks['onCaptured'];
  onRetryFailed: ExceptionHooks['onRetryFailed'];
  routes: (app: FastifyInstance) => Promise<void>;
} {
  return { onCaptured: async () => {}, onRetryFailed: async () => {}, routes: async () => {} };
}
