import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AppContext, MercatoModule } from '../context.ts';
import { checkReadiness, type HealthCheck, metricsRoute } from '../observability/index.ts';
import { AppError } from './errors.ts';
import { sendProblem } from './problem-handler.ts';

const NO_RATE_LIMIT = { rateLimit: false } as const;

/** Every server this process is configured to use, each a readiness check. */
export function serverChecks(ctx: AppContext): HealthCheck[] {
  const checks: HealthCheck[] = [
    {
      name: ctx.db.kind,
      check: async () => {
        await ctx.db.kysely.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
        return true;
      },
    },
  ];
  const { redis } = ctx;
  // A client still (re)connecting is down: asking it would only queue the ping.
  if (redis)
    checks.push({
      name: 'redis',
      check: async () => redis.status === 'ready' && (await redis.ping()) === 'PONG',
    });
  if (ctx.config.natsUrl) {
    checks.push({
      name: 'nats',
      check: async () => {
        // Read at each check: NATS unreachable at start connects later (ctx.natsHandle).
        const nats = ctx.nats;
        if (!nats || nats.isClosed()) return false;
        await nats.flush();
        return !nats.isClosed();
      },
    });
  }
  return checks;
}

/** /health/live, /health/ready, /metrics and /openapi.json. */
export function platformRoutes(ctx: AppContext, modules: MercatoModule[]) {
  const checks = [...serverChecks(ctx), ...modules.flatMap((m) => m.healthChecks ?? [])];
  return async (app: FastifyInstance) => {
    app.get(
      '/health/live',
      {
        config: NO_RATE_LIMIT,
        schema: {
          tags: ['platform'],
          summary: 'The process is up',
          response: { 200: Type.Object({ status: Type.Literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );
    app.get(
      '/health/ready',
      {
        config: NO_RATE_LIMIT,
        schema: {
          tags: ['platform'],
          summary: 'Every configured server answers; 503 names those that do not',
          response: {
            200: Type.Object({
              status: Type.Literal('ready'),
              checks: Type.Record(Type.String(), Type.String()),
            }),
          },
        },
      },
      async (request, reply) => {
        const report = await checkReadiness(checks);
        if (!report.ready) {
          return sendProblem(
            request,
            reply,
            new AppError('SERVICE_UNAVAILABLE', `not ready: ${report.down.join(', ')} down`, {
              checks: report.checks,
              down: report.down,
              retryAfterSeconds: 5,
            }),
          );
        }
        return { status: 'ready' as const, checks: report.checks };
      },
    );
    await app.register(metricsRoute(ctx.metrics, ctx.config.metricsToken));
    app.get('/openapi.json', { config: NO_RATE_LIMIT, schema: { hide: true } }, async () => app.swagger());
  };
}
