import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';
import { sendProblem } from './problem-handler.ts';

type Route = { pattern: RegExp; methods: string[] };

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A route URL (`/users/:id`, `/docs/*`) as a regular expression over request paths: a parameter
 * matches one non-empty segment, `*` the rest of the path.
 */
function patternOf(url: string): RegExp {
  const segments = url.split('/').map((segment) => {
    if (segment === '*') return '.*';
    // `::` is a literal colon; any other colon starts a parameter.
    if (/(^|[^:]):(?!:)/.test(segment.replaceAll('::', ''))) return '[^/]+';
    return escapeRegExp(segment.replaceAll('::', ':'));
  });
  return new RegExp(`^${segments.join('/')}/?$`);
}

const asList = (method: string | string[]) => (Array.isArray(method) ? method : [method]);

/** The methods each route URL of the app answers, collected as routes are declared. */
export type KnownRoutes = { allowed(path: string): string[] };

/**
 * Collects every route as it is declared (add before any route). Catch-all routes (`*`: CORS
 * preflights answer OPTIONS everywhere) do not make a path known, but are allowed on known ones.
 */
export function collectRoutes(app: FastifyInstance): KnownRoutes {
  const routes: Route[] = [];
  const everywhere = new Set<string>();
  app.addHook('onRoute', (route) => {
    const methods = asList(route.method).map((m) => m.toUpperCase());
    if (route.url === '*' || route.url === '/*') {
      for (const method of methods) everywhere.add(method);
      return;
    }
    routes.push({ pattern: patternOf(route.url), methods });
  });
  return {
    allowed(path) {
      const methods = new Set<string>();
      for (const route of routes) {
        if (route.pattern.test(path)) for (const method of route.methods) methods.add(method);
      }
      if (methods.size === 0) return [];
      if (methods.has('GET')) methods.add('HEAD');
      for (const method of everywhere) methods.add(method);
      return [...methods].sort();
    },
  };
}

/**
 * The not-found handler: a path some route answers with another method is a 405
 * METHOD_NOT_ALLOWED with an Allow header listing its methods (RFC 9110 §15.5.6); any other is a
 * 404 ROUTE_NOT_FOUND. Neither names the query string.
 */
export function unroutedHandler(known: KnownRoutes) {
  return (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    const allowed = known.allowed(path);
    // A method the path allows yet no route took (a parameter over maxParamLength) is a 404.
    if (allowed.length > 0 && !allowed.includes(request.method)) {
      reply.header('allow', allowed.join(', '));
      const detail = `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`;
      return sendProblem(request, reply, new AppError('METHOD_NOT_ALLOWED', detail));
    }
    return sendProblem(request, reply, new AppError('ROUTE_NOT_FOUND', `no route ${request.method} ${path}`));
  };
}
