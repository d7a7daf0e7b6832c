// STUB (helper H3 replaces this file): retries, sources and payload retrieval.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../platform/http/index.ts';
import type { ExceptionHooks, ExceptionsDeps } from './deps.ts';

export function createRetries(_deps: ExceptionsDeps): {
  retry: ExceptionHooks['retry'];
  invalidatePayload: ExceptionHooks['invalidatePayload'];
  routes: (app: FastifyInstance) => Promise<void>;
  close(): Promise<void>;
} {
  return {
    retry: async () => {
      throw new AppError('NOT_RETRYABLE', 'retries are not built yet');
    },
    invalidatePayload: async () => {},
    routes: async () => {},
    close: async () => {},
  };
}
