// STUB (helper H2 replaces this file).
import type { FastifyInstance } from 'fastify';
import type { ExceptionsDeps } from './deps.ts';

export function exceptionRoutes(_deps: ExceptionsDeps) {
  return async (_app: FastifyInstance) => {};
}
