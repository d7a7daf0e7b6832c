import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { AppError, beforeBody, requirePlatformAdmin } from '../../platform/http/index.ts';
import { DISPLAY_NAME, EMAIL, SLUG } from '../account-fields.ts';
import type { IdentityDeps } from '../module.ts';
import { PageOf, PageQuery, readPage, toPage } from '../users/page-cursor.ts';
import { IdParams, NewPassword, SECURITY } from '../users/user-schemas.ts';
import { createTenant, findTenantById, listTenants, updateTenant } from './tenant-store.ts';

const TenantBody = Type.Object(
  {
    slug: Type.String({ ...SLUG, description: 'Lowercase letters, digits and inner hyphens; 1..63' }),
    name: Type.String(DISPLAY_NAME),
    adminEmail: Type.String(EMAIL),
    adminPassword: NewPassword,
    adminName: Type.Optional(Type.String(DISPLAY_NAME)),
  },
  { additionalProperties: false },
);

const TenantView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  slug: Type.String(),
  name: Type.String(),
  status: Type.Enum(['active', 'suspended']),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

const CreatedTenant = Type.Object({
  ...TenantView.properties,
  admin: Type.Object({
    id: Type.String({ format: 'uuid' }),
    email: Type.String(),
    role: Type.Literal('admin'),
  }),
});

const PatchBody = Type.Object(
  {
    name: Type.Optional(Type.String(DISPLAY_NAME)),
    status: Type.Optional(
      Type.Enum(['active', 'suspended'], {
        description:
          "suspended: the tenant's requests answer 403 TENANT_SUSPENDED, its logins are refused and its WAL deliveries pause",
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

// One path template with GET /tenants/{id}: the tenant is named by its slug or its id.
const TenantKeyParams = Type.Object({
  id: Type.String({
    pattern: `^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|${SLUG.pattern.slice(1, -1)})$`,
    description: 'The tenant slug (or id)',
  }),
});

const base = { tags: ['tenants'], security: SECURITY };

/** POST/GET /tenants, GET /tenants/{id} and PATCH /tenants/{slug}: tenant administration for platform admins. */
export function tenantRoutes(deps: IdentityDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    // The caller is checked before the body is read (after the rate limit), so a stranger learns nothing from a 400.
    app.addHook('preParsing', beforeBody(requirePlatformAdmin));

    app.post(
      '/tenants',
      {
        schema: {
          ...base,
          summary: 'Create a tenant and its first admin',
          body: TenantBody,
          response: { 201: CreatedTenant },
        },
      },
      async (request, reply) => {
        // The store refuses what the schema lets through (the reserved slug `platform`).
        const { tenant, admin } = await createTenant(deps.db, request.body, deps.onTenantCreated);
        reply.code(201).header('location', `/api/v1/tenants/${tenant.id}`);
        return { ...tenant, admin: { id: admin.id, email: admin.email, role: 'admin' as const } };
      },
    );

    app.get(
      '/tenants',
      {
        schema: {
          ...base,
          summary: 'List tenants, oldest first',
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: PageOf(TenantView) },
        },
      },
      async (request) => {
        const { limit, after } = readPage(request.query);
        return toPage(await listTenants(deps.db, limit + 1, after), limit);
      },
    );

    app.get(
      '/tenants/:id',
      { schema: { ...base, summary: 'One tenant', params: IdParams, response: { 200: TenantView } } },
      async (request) => {
        const tenant = await findTenantById(deps.db, request.params.id);
        if (!tenant) throw new AppError('NOT_FOUND', `tenant ${request.params.id} not found`);
        return tenant;
      },
    );

    app.patch(
      '/tenants/:id',
      {
        schema: {
          ...base,
          summary: 'Rename, suspend or resume a tenant (the platform tenant cannot be suspended)',
          params: TenantKeyParams,
          body: PatchBody,
          response: { 200: TenantView },
        },
      },
      async (request) => {
        const tenant = await updateTenant(deps.db, request.params.id, request.body);
        if (!tenant) throw new AppError('NOT_FOUND', `tenant ${request.params.id} not found`);
        // This process at once; the others when the change's NOTIFY arrives (migration 0013).
        deps.tenantStatus.set(tenant.id, tenant.status);
        return tenant;
      },
    );
  };
}
