import type { FastifyInstance } from 'fastify';
import type { ExceptionsDeps } from './deps.ts';
import { lifecycleRoutes } from './lifecycle-routes.ts';
import { queryRoutes } from './query-routes.ts';

/**
 * The operators' routes over exceptions: list, search, summary and detail (reads, permission
 * exceptions:read), acknowledge, resolve, close and bulk (changes, exceptions:write).
 */
export function exceptionRoutes(deps: ExceptionsDeps) {
  return async (app: FastifyInstance) => {
    await app.register(queryRoutes(deps));
    await app.register(lifecycleRoutes(deps));
  };
}
