import type { FastifyRequest } from 'fastify';

/**
 * A route's preValidation hook for a body that may be left out (a cancel without a reason, a
 * retry without a payment): no body, or `null`, is the empty object, which the route's schema
 * then checks as it checks any body.
 */
export const noBodyIsEmpty = async (request: FastifyRequest): Promise<void> => {
  if (request.body === undefined || request.body === null) request.body = {};
};
