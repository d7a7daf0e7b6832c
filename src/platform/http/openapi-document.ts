import type { SwaggerOptions } from '@fastify/swagger';
import { withSharedComponents } from './openapi-components.ts';
import { withProblemResponses } from './openapi-problems.ts';

/**
 * The options of @fastify/swagger: the document's header, its security schemes, and the
 * post-processing every served document goes through (problem answers, shared components,
 * operationIds).
 */
export function swaggerOptions(version = '0.1.0'): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mercato API',
        version,
        description:
          'Event-driven commerce backend. Every error is RFC 9457 application/problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          apiKeyAuth: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'The operator’s MERCATO_METRICS_TOKEN (only when it is set)',
          },
        },
      },
    },
    transformObject: (documentObject) =>
      withSharedComponents(
        withProblemResponses(
          'openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject,
        ),
      ),
  };
}
