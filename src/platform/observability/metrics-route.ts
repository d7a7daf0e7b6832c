import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../http/errors.ts';
import type { Metrics } from './metrics.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route reads the Authorization header itself (e.g. /metrics and its scrape token): the
     * global hook does not take it for an access token or API key.
     */
    ownAuthorization?: boolean;
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Whether the request carries `Authorization: Bearer <token>`. Compared in constant time (of the
 * digests, so neither the token's length nor its characters leak through timing).
 */
export function hasBearerToken(request: FastifyRequest, token: string): boolean {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return timingSafeEqual(digest(match?.[1] ?? ''), digest(token)) && match !== null;
}

/**
 * GET /metrics in Prometheus text format. With a token (MERCATO_METRICS_TOKEN) the scraper must
 * send `Authorization: Bearer <token>`; anything else answers 401 UNAUTHENTICATED.
 */
export function metricsRoute(metrics: Metrics, token: string | undefined) {
  return async (app: FastifyInstance) => {
    app.get(
      '/metrics',
      {
        config: { rateLimit: false, ownAuthorization: true },
        schema: {
          tags: ['platform'],
          summary: 'Prometheus metrics (text exposition format)',
          description:
            'Needs `Authorization: Bearer <MERCATO_METRICS_TOKEN>` when the operator set that token; open otherwise.',
          security: [{ metricsToken: [] }, {}],
          response: {
            200: {
              description: 'Metrics in Prometheus text format 0.0.4',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
          },
        },
      },
      async (request, reply) => {
        if (token !== undefined && !hasBearerToken(request, token)) {
          throw new AppError(
            'UNAUTHENTICATED',
            '/metrics needs Authorization: Bearer <token>, the token being MERCATO_METRICS_TOKEN',
          );
        }
        reply.type(metrics.registry.contentType);
        return metrics.registry.metrics();
      },
    );
  };
}
