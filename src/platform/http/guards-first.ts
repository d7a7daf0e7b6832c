import type { FastifyInstance, RouteOptions } from 'fastify';
import { isGuard } from './auth.ts';

type Hooks = RouteOptions['onRequest'] | RouteOptions['preValidation'] | RouteOptions['preHandler'];

const listOf = (hooks: Hooks): unknown[] =>
  hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];

/**
 * Moves the guards a route declares as preValidation or preHandler (requireUser,
 * requirePermission, requirePlatformAdmin: see isGuard) to the end of its onRequest hooks. They
 * need only the principal, which the app's own onRequest hook has set by then, so a caller who may
 * not use a route gets its 401 or 403 before the body is received: a customer's 30 MiB body is
 * neither read nor parsed, and a stranger learns nothing from a 400 about the body's shape. Must
 * be added before any route is declared. Guards a plugin adds with addHook are not routes'
 * options: such a plugin adds them as onRequest hooks itself.
 */
export function runGuardsFirst(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const moved: unknown[] = [];
    for (const phase of ['preValidation', 'preHandler'] as const) {
      const hooks = listOf(route[phase]);
      if (!hooks.some(isGuard)) continue;
      moved.push(...hooks.filter(isGuard));
      const rest = hooks.filter((hook) => !isGuard(hook));
      (route as unknown as Record<string, unknown>)[phase] = rest.length > 0 ? rest : undefined;
    }
    if (moved.length > 0) {
      route.onRequest = [...listOf(route.onRequest), ...moved] as RouteOptions['onRequest'];
    }
  });
}
