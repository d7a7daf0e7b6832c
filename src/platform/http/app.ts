import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { registerAjvFormats, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AppContext, MercatoModule } from '../context.ts';
import { type Authenticator, readCredential } from './auth.ts';
import { AppError } from './errors.ts';
import { problemErrorHandler, sendProblem } from './problem-handler.ts';
import { parseTraceparent, requestIdOf } from './request-id.ts';
import { platformRoutes } from './platform-routes.ts';

registerAjvFormats();

export type AppOptions = { authenticate: Authenticator; modules: MercatoModule[]; version?: string };

/** Builds the whole HTTP application; listening is the caller's business (tests use inject()). */
export async function buildApp(ctx: AppContext, options: AppOptions): Promise<FastifyInstance> {
  const { config } = ctx;
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    genReqId: requestIdOf,
    requestIdLogLabel: 'requestId',
    disableRequestLogging: config.logLevel !== 'debug' && config.logLevel !== 'trace',
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.setErrorHandler(problemErrorHandler);
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
  app.decorateRequest('principal', undefined);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const trace = parseTraceparent(request.headers.traceparent);
    if (trace) request.log = request.log.child(trace);
    const credential = readCredential(request);
    if (credential) {
      request.principal = await options.authenticate(credential);
      const p = request.principal;
      request.log = request.log.child({
        tenantId: p.tenantId,
        ...(p.kind === 'user' ? { userId: p.userId } : { apiKeyId: p.apiKeyId }),
      });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(helmet, { global: true });
  await app.register(cors, {
    origin: config.corsOrigins === '*' ? '*' : config.corsOrigins,
    exposedHeaders: ['x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset'],
    allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'x-request-id', 'traceparent', 'idempotency-key'],
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    enableDraftSpec: true,
    ...(ctx.redis ? { redis: ctx.redis, nameSpace: 'mercato:ratelimit:' } : {}),
    timeWindow: 60_000,
    max: (request) =>
      request.principal ? config.rateLimit.authenticatedPerMinute : config.rateLimit.anonymousPerMinute,
    keyGenerator: (request) => {
      const p = request.principal;
      if (!p) return `ip:${request.ip}`;
      return p.kind === 'user' ? `user:${p.userId}` : `key:${p.apiKeyId}`;
    },
    errorResponseBuilder: (_request, context) =>
      new AppError('RATE_LIMITED', `rate limit of ${context.max} requests per minute reached; retry in ${context.after}`, {
        retryAfterSeconds: Math.ceil(context.ttl / 1000),
      }),
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mercato API',
        version: options.version ?? '0.1.0',
        description: 'Event-driven commerce backend. Every error is RFC 9457 application/problem+json with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          apiKeyAuth: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  await app.register(platformRoutes(ctx, options.modules));
  for (const module of options.modules) {
    if (module.rootRoutes) await app.register(module.rootRoutes);
    if (module.routes) await app.register(module.routes, { prefix: '/api/v1' });
  }
  return app;
}
