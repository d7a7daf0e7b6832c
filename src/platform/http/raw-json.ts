import type { FastifyReply } from 'fastify';

/** value as the route's own 200 response schema serializes it (for answers kept as JSON). */
export function serialize200(reply: FastifyReply, value: unknown): string {
  const serializer = reply.getSerializationFunction('200');
  if (!serializer)
    throw new Error(`${reply.request.routeOptions.url}: no 200 response schema to serialize with`);
  return serializer(value as Record<string, unknown>);
}

/** Sends JSON already serialized (by serialize200): a string with a JSON content type skips the serializer. */
export function sendJson(reply: FastifyReply, json: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(json);
}
