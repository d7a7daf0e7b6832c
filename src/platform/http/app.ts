import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Format, registerAjvFormats, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import type { AppContext, MercatoModule } from '../context.ts';
import { deriveServerKey, signingKeyMaterial } from '../server-keys.ts';
import { isUuid } from '../uuidv7.ts';
import { type Authenticator, readCredential } from './auth.ts';
import { clientErrorHandler } from './client-errors.ts';
import { clientKey } from './client-key.ts';
import { AppError } from './errors.ts';
import { failedAuthCounter } from './failed-auth.ts';
import { runGuardsFirst } from './guards-first.ts';
import { IDEMPOTENCY_KEY_INFO, purgeIdempotencyKeys, registerIdempotency } from './idempotency.ts';
import { jsonProblem, registerJsonGuard } from './json-guard.ts';
import { collectRoutes, unroutedHandler } from './method-not-allowed.ts';
import { swaggerOptions } from './openapi-document.ts';
import { paramTextRule } from './param-text.ts';
import { platformRoutes } from './platform-routes.ts';
import { problemErrorHandler, sendProblem, toAppError } from './problem-handler.ts';
import { rateLimitStoreWithFallback } from './redis-fallback.ts';
import { parseTraceparent, requestIdOf } from './request-id.ts';
import { lazyChildLogger } from './request-logger.ts';
import { registerSecurityHeaders, securityHeaders } from './security-headers.ts';
import { isStorableTimestamp } from './timestamps.ts';

registerAjvFormats();
// ajv's uuid also accepts a "urn:uuid:" prefix, which PostgreSQL's uuid type rejects (a 500).
Format.Set('uuid', isUuid);
// ajv's date-time also accepts year 0000 and offsets of 16 hours or more, which timestamptz rejects.
Format.Set('date-time', isStorableTimestamp);

export type AppOptions = { authenticate: Authenticator; modules: MercatoModule[]; version?: string };

/** Builds the whole HTTP application; listening is the caller's business (tests use inject()). */
export async function buildApp(ctx: AppContext, options: AppOptions): Promise<FastifyInstance> {
  const { config } = ctx;
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    // request.ip is the socket's address unless it is a trusted proxy's (MERCATO_TRUSTED_PROXIES).
    ...(config.trustedProxies.length > 0 ? { trustProxy: config.trustedProxies } : {}),
    genReqId: requestIdOf,
    logController: new LogController({
      requestIdLogLabel: 'requestId',
      disableRequestLogging: config.logLevel !== 'debug' && config.logLevel !== 'trace',
    }),
    return503OnClosing: true,
    // What Node's HTTP parser refuses (431, a bad request line) is a problem+json too.
    clientErrorHandler,
    forceCloseConnections: 'idle',
    // A path parameter as sent, percent-encoded: 200 characters of 4-byte UTF-8 are 2,400. Each
    // route's schema bounds its parameters as characters (every one has a maxLength, a pattern or
    // a format); the router's bound only stops what no route could take.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 2400 },
    // Every log line of a request, "incoming request" included, carries the caller's trace ids.
    childLoggerFactory: (logger, bindings, opts, rawReq) =>
      lazyChildLogger(
        logger as Logger,
        { ...bindings, ...parseTraceparent(rawReq.headers.traceparent) },
        opts,
      ),
    // A path Fastify cannot route (bad percent-encoding, over-long parameter) is a problem too.
    frameworkErrors: (error, request, reply) => {
      reply.headers(securityHeaders()).header('x-request-id', request.id);
      return sendProblem(request, reply, toAppError(error));
    },
  });
  // Fastify parses text/plain by default; every Mercato route takes JSON, so text is a 415.
  app.removeContentTypeParser('text/plain');
  // Every JSON body is checked as it is parsed: UTF-8, U+0000, lone surrogates, depth, ±Infinity.
  registerJsonGuard(app);
  app.setValidatorCompiler((route) => {
    const validate = TypeBoxValidatorCompiler(route);
    if (route.httpPart === 'body') return validate;
    const part =
      route.httpPart === 'querystring' ? 'query' : route.httpPart === 'headers' ? 'headers' : 'params';
    const textRule = paramTextRule(route.schema, part);
    return (value: unknown) => {
      const problem = jsonProblem(value, part) ?? textRule?.(value);
      return problem ? { error: problem } : validate(value);
    };
  });
  app.setErrorHandler(problemErrorHandler);
  // A route's guards run on onRequest, before its body is read (guards-first.ts).
  runGuardsFirst(app);
  // 405 with Allow for a known path, else 404 (method-not-allowed.ts).
  app.setNotFoundHandler(unroutedHandler(collectRoutes(app)));
  app.decorateRequest('principal', undefined);
  // Request hashes are keyed (a body may hold a password). Identity makes the signing key this
  // derives from when MERCATO_SECRETS_KEY is unset; an app without either hashes unkeyed.
  const keyed = ctx.config.secretsKey || (await signingKeyMaterial(ctx, ctx.db.kysely)) !== undefined;
  const idempotencyKey = keyed ? await deriveServerKey(ctx, ctx.db.kysely, IDEMPOTENCY_KEY_INFO) : undefined;
  registerIdempotency(app, ctx.db.kysely, idempotencyKey);
  const purge = setInterval(() => {
    purgeIdempotencyKeys(ctx.db.kysely).catch((err) => app.log.warn({ err }, 'idempotency purge failed'));
  }, 3_600_000);
  purge.unref();
  app.addHook('onClose', async () => clearInterval(purge));

  // Security and CORS headers first: every answer carries them, an early one included.
  registerSecurityHeaders(app);
  await app.register(cors, {
    origin: config.corsOrigins === '*' ? '*' : config.corsOrigins,
    exposedHeaders: [
      'x-request-id',
      'retry-after',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      'x-cart-token',
    ],
    allowedHeaders: [
      'authorization',
      'content-type',
      'x-api-key',
      'x-request-id',
      'traceparent',
      'idempotency-key',
      // Storefronts in the browser: the store (storefront.ts) and the guest cart (src/cart).
      'x-tenant',
      'x-cart-token',
    ],
  });
  // Answers a module gives before any credential is verified (MercatoModule.beforeAuth).
  const early = options.modules.flatMap((m) => (m.beforeAuth ? [m.beforeAuth.bind(m)] : []));
  if (early.length > 0) {
    app.addHook('onRequest', (request, reply, done) => {
      for (const answer of early) {
        if (answer(request, reply)) return;
      }
      done();
    });
  }
  app.decorateRequest('reauthenticate', async function (this: FastifyRequest) {
    const credential = readCredential(this);
    if (!credential) return undefined;
    return options.authenticate(credential).catch(() => undefined);
  });
  // A refused credential counts against the caller's per-IP anonymous limit (failed-auth.ts).
  const refuse = failedAuthCounter(app);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    try {
      // A route that reads Authorization itself (/metrics' scrape token) is no login attempt.
      const credential = request.routeOptions.config.ownAuthorization ? undefined : readCredential(request);
      if (credential) request.principal = await options.authenticate(credential);
    } catch (refusal) {
      await refuse(request, reply, refusal);
    }
    if (request.principal) {
      const p = request.principal;
      // reply.log writes "request completed": it must carry the principal too.
      request.log = reply.log = request.log.child({
        tenantId: p.tenantId,
        ...(p.kind === 'user' ? { userId: p.userId } : { apiKeyId: p.apiKeyId }),
      });
    }
  });
  app.addHook('onResponse', (request, reply, done) => {
    ctx.metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    enableDraftSpec: true,
    // A Redis outage must not turn every request into a 500: the store counts in-process while
    // Redis is down (redis-fallback.ts); skipOnError is the last resort. /health/ready reports it.
    skipOnError: true,
    ...(ctx.redis ? { store: rateLimitStoreWithFallback(ctx.redis, `${config.redisPrefix}ratelimit:`) } : {}),
    timeWindow: 60_000,
    max: (request) =>
      request.principal ? config.rateLimit.authenticatedPerMinute : config.rateLimit.anonymousPerMinute,
    keyGenerator: (request) => {
      const p = request.principal;
      if (!p) return `ip:${clientKey(request.ip)}`;
      return p.kind === 'user' ? `user:${p.userId}` : `key:${p.apiKeyId}`;
    },
    errorResponseBuilder: (_request, context) =>
      new AppError(
        'RATE_LIMITED',
        `rate limit of ${context.max} requests per minute reached; retry in ${context.after}`,
        {
          retryAfterSeconds: Math.ceil(context.ttl / 1000),
        },
      ),
  });
  await app.register(swagger, swaggerOptions(options.version));
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  await app.register(platformRoutes(ctx, options.modules));
  for (const module of options.modules) {
    if (module.rootRoutes) await app.register(module.rootRoutes);
    if (module.routes) await app.register(module.routes, { prefix: '/api/v1' });
  }
  return app;
}
