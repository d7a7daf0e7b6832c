// STUB (helper H3 replaces this file): retries, sources and payload retrieval.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../platform/http/index.ts';
import type { ExceptionHooks, ExceptionsDeps } from './deps.ts';

export function createRetries(_deps: ExceptionsDeps): {
  retry: ExceptionHooks['retry'];
  invalidatePayload: ExceptionHooks['invalidatePayload'];
  loadPayload: ExceptionHooks['loadPayload'];
  routes: (app: FastifyInstance) => Promise<void>;
  close(): Promise<void>;
} {
  return {
    retry: async () => {
      throw new AppError('NOT_RETRYABLE', 'retries are not built yet');
    },
    invalidatePayload: async () => {},
    loadPayload: async (_tenantId, row) => ({ payload: row.payload, from: 'event' }),
    routes: async () => {},
    close: async () => {},
  };
}
