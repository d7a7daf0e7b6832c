import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';

/**
 * Counts a refused credential (bad token, bad API key, malformed Authorization header) against
 * the caller's per-IP anonymous rate limit, then rethrows the refusal. Past the limit it answers
 * 429 RATE_LIMITED with Retry-After instead, so guessing credentials costs the same budget as
 * any anonymous request and a flood of bogus keys cannot turn into a flood of database lookups.
 * Uses the global limiter's own store and bucket (`ip:<clientKey(address)>`, an IPv6 caller's
 * whole /64, anonymous max): the request has no principal. Call only after the rate-limit
 * plugin is registered (at request time).
 */
export function failedAuthCounter(
  app: FastifyInstance,
): (request: FastifyRequest, reply: FastifyReply, refusal: unknown) => Promise<never> {
  let limit: ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined;
  return async (request, reply, refusal) => {
    request.principal = undefined;
    if (refusal instanceof AppError && refusal.code === 'INVALID_TOKEN') {
      limit ??= app.rateLimit() as unknown as (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
      await limit.call(app, request, reply);
    }
    throw refusal;
  };
}
