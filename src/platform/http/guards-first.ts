import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preParsingAsyncHookHandler,
  RouteOptions,
} from 'fastify';
import { isGuard } from './auth.ts';

type Guard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
type Hooks =
  | RouteOptions['onRequest']
  | RouteOptions['preParsing']
  | RouteOptions['preValidation']
  | RouteOptions['preHandler'];

const listOf = (hooks: Hooks): unknown[] =>
  hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];

/** A guard as a preParsing hook: it runs after every onRequest hook (the rate limit among them) and before the body is read. */
export function beforeBody(
  guard: (request: FastifyRequest, reply: FastifyReply) => Promise<void>,
): preParsingAsyncHookHandler {
  return async (request, reply, payload) => {
    await guard(request, reply);
    return payload;
  };
}

/**
 * Moves the guards a route declares as preValidation or preHandler (requireUser,
 * requirePermission, requirePlatformAdmin: see isGuard) to its preParsing hooks. They need only
 * the principal, which the app's onRequest hook has set by then, so a caller who may not use a
 * route gets its 401 or 403 before the body is received: a customer's 30 MiB body is neither read
 * nor parsed, and a stranger learns nothing from a 400 about the body's shape. preParsing, not
 * onRequest: every onRequest hook, the rate limit's among them, runs first, so refused callers are
 * counted like everyone else. Must be added before any route is declared. Guards a plugin adds
 * with addHook are not routes' options: such a plugin adds them with beforeBody itself.
 */
export function runGuardsFirst(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const moved: Guard[] = [];
    for (const phase of ['preValidation', 'preHandler'] as const) {
      const hooks = listOf(route[phase]);
      if (!hooks.some(isGuard)) continue;
      moved.push(...(hooks.filter(isGuard) as Guard[]));
      const rest = hooks.filter((hook) => !isGuard(hook));
      (route as unknown as Record<string, unknown>)[phase] = rest.length > 0 ? rest : undefined;
    }
    if (moved.length > 0) {
      route.preParsing = [
        ...listOf(route.preParsing),
        ...moved.map(beforeBody),
      ] as RouteOptions['preParsing'];
    }
  });
}
