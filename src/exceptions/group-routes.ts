// STUB (helper H1 replaces this file).
import type { FastifyInstance } from 'fastify';
import type { ExceptionsDeps } from './deps.ts';

export function groupRoutes(_deps: ExceptionsDeps) {
  return async (_app: FastifyInstance) => {};
}
