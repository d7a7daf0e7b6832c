import type { FastifyRequest } from 'fastify';
import type { EventMeta } from '../events/index.ts';
import { AppError } from './errors.ts';
import { parseTraceparent } from './request-id.ts';

/** A tenant's id by its slug, or undefined; throws 403 TENANT_SUSPENDED for a suspended one. Supplied by identity. */
export type TenantResolver = (slug: string) => Promise<string | undefined>;

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The X-Tenant a caller sent, as an answer names it: at most a slug's length (a header may be 16 KB). */
const shown = (slug: string) => JSON.stringify(slug.length > 63 ? `${slug.slice(0, 63)}…` : slug);

/**
 * The tenant a storefront request is for. A caller with a credential is in its credential's
 * tenant (an `X-Tenant` naming another is 400); an anonymous shopper names the store with
 * `X-Tenant: <slug>` (as a Shopify storefront names its shop), else 400 TENANT_REQUIRED.
 * An unknown slug is 404, so no slug is told apart from a missing store.
 */
export async function storefrontTenant(request: FastifyRequest, resolve: TenantResolver): Promise<string> {
  const header = request.headers['x-tenant'];
  const slug = typeof header === 'string' && header !== '' ? header.trim().toLowerCase() : undefined;
  const principal = request.principal;
  if (principal) {
    if (slug !== undefined && slug !== principal.tenantSlug) {
      throw new AppError('BAD_REQUEST', `X-Tenant ${shown(slug)} is not the tenant of your credential`);
    }
    return principal.tenantId;
  }
  if (slug === undefined) {
    throw new AppError(
      'TENANT_REQUIRED',
      'anonymous requests name the store with the X-Tenant header (its slug)',
    );
  }
  if (!SLUG.test(slug)) throw new AppError('NOT_FOUND', `store ${shown(slug)} not found`);
  const id = await resolve(slug);
  if (!id) throw new AppError('NOT_FOUND', `store ${slug} not found`);
  return id;
}

/** The event metadata of a request: its X-Correlation-Id (else its request id) and traceparent. */
export function eventMetaOf(request: FastifyRequest): EventMeta {
  const given = request.headers['x-correlation-id'];
  const correlationId =
    typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : String(request.id);
  const traceparent = request.headers.traceparent;
  return {
    correlationId,
    traceparent: parseTraceparent(traceparent) ? (traceparent as string).trim().toLowerCase() : undefined,
  };
}
