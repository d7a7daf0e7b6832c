import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import {
  forgetUserAnswers,
  principalOf,
  requirePermission,
  requireUser,
  userOf,
} from '../../platform/http/index.ts';
import { DISPLAY_NAME, EMAIL } from '../account-fields.ts';
import { forgetApiKey } from '../api-keys/index.ts';
import type { IdentityDeps } from '../module.ts';
import { hashPassword, passwordHashingBudget } from '../passwords.ts';
import { eraseUser } from './erase-user.ts';
import { PageOf, PageQuery, readPage, toPage } from './page-cursor.ts';
import { changeRole, changeStatus, listUsers } from './staff-store.ts';
import { IdParams, Phone, RoleSchema, SECURITY, StatusSchema, UserView } from './user-schemas.ts';
import { createUser, getUserById } from './user-store.ts';

// Customers sign themselves up through /auth/register; admins create the tenant's staff.
const StaffRole = Type.Enum(['staff', 'operator', 'admin']);

const StaffBody = Type.Object(
  {
    email: Type.String(EMAIL),
    password: Type.String({ minLength: 12, maxLength: 128 }),
    name: Type.String(DISPLAY_NAME),
    role: StaffRole,
    phone: Type.Optional(Type.Union([Phone, Type.Null()])),
  },
  { additionalProperties: false },
);

const RoleBody = Type.Object({ role: RoleSchema }, { additionalProperties: false });
const StatusBody = Type.Object({ status: StatusSchema }, { additionalProperties: false });
const ListQuery = Type.Object(
  { ...PageQuery, role: Type.Optional(RoleSchema), status: Type.Optional(StatusSchema) },
  { additionalProperties: false },
);

const base = { tags: ['users'], security: SECURITY };

/** POST/GET /users, GET/DELETE /users/{id}, PUT /users/{id}/role and /status: tenant admins manage accounts. */
export function staffRoutes(deps: IdentityDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    // preValidation: the caller is checked before the body, so a stranger learns nothing from a 400.
    const preValidation = requireUser('admin');
    // Reading users is also open to API keys granted users:read (an integration syncing accounts).
    const canRead = requirePermission('users:read');

    app.post(
      '/users',
      {
        preValidation,
        // Each account costs an argon2 hash: the per-IP budget of logins too, counted apart.
        preHandler: passwordHashingBudget(app, deps.ctx.config.rateLimit.loginPerIpPerMinute, 'staff-create'),
        schema: {
          ...base,
          summary: 'Create a staff, operator or admin account',
          description:
            'Limited per IP per minute as logins are (MERCATO_LOGIN_RATE_LIMIT, 429 RATE_LIMITED).',
          body: StaffBody,
          response: { 201: UserView },
        },
      },
      async (request, reply) => {
        const { tenantId } = userOf(request);
        const { password, ...fields } = request.body;
        // Hashed before the transaction: it holds no connection (PGlite has one) meanwhile.
        const passwordHash = await hashPassword(password);
        const user = await withTenant(deps.db, tenantId, (trx) =>
          createUser(trx, { ...fields, passwordHash, tenantId }),
        );
        reply.code(201).header('location', `/api/v1/users/${user.id}`);
        return user;
      },
    );

    app.get(
      '/users',
      {
        preValidation: canRead,
        schema: {
          ...base,
          summary: "List the tenant's users, oldest first (admins, or API keys with users:read)",
          querystring: ListQuery,
          response: { 200: PageOf(UserView) },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        const { limit, after } = readPage(request.query);
        const { role, status } = request.query;
        const rows = await withTenant(deps.db, tenantId, (trx) =>
          listUsers(trx, tenantId, { role, status }, limit + 1, after),
        );
        return toPage(rows, limit);
      },
    );

    app.get(
      '/users/:id',
      {
        preValidation: canRead,
        schema: {
          ...base,
          summary: 'One user of the tenant (admins, or API keys with users:read)',
          params: IdParams,
          response: { 200: UserView },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        return withTenant(deps.db, tenantId, (trx) => getUserById(trx, tenantId, request.params.id));
      },
    );

    app.put(
      '/users/:id/role',
      {
        preValidation,
        schema: {
          ...base,
          summary: "Change a user's role (not your own)",
          params: IdParams,
          body: RoleBody,
          response: { 200: UserView },
        },
      },
      async (request) => {
        const { tenantId, userId } = userOf(request);
        return withTenant(deps.db, tenantId, (trx) =>
          changeRole(trx, tenantId, userId, request.params.id, request.body.role),
        );
      },
    );

    app.put(
      '/users/:id/status',
      {
        preValidation,
        schema: {
          ...base,
          summary: 'Enable or disable a user (not yourself); disabling signs them out',
          params: IdParams,
          body: StatusBody,
          response: { 200: UserView },
        },
      },
      async (request) => {
        const { tenantId, userId } = userOf(request);
        return withTenant(deps.db, tenantId, (trx) =>
          changeStatus(trx, tenantId, userId, request.params.id, request.body.status),
        );
      },
    );

    app.delete(
      '/users/:id',
      {
        preValidation,
        schema: {
          ...base,
          summary:
            'Erase a user: personal data blanked, addresses deleted, sessions and their API keys revoked',
          description:
            'The row stays (status erased) so audit entries keep their reference; the user reads as absent ' +
            'from then on, so erasing again answers 404. The last active admin cannot be erased (409).',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { tenantId } = userOf(request);
        const { revokedApiKeys } = await withTenant(deps.db, tenantId, (trx) =>
          eraseUser(trx, tenantId, request.params.id),
        );
        for (const id of revokedApiKeys) forgetApiKey(deps, id);
        // Answers replayed to their Idempotency-Keys may hold their personal data (a platform
        // table the tenant's transaction cannot reach; a crash before this leaves them a day).
        await forgetUserAnswers(deps.db, request.params.id);
        return reply.code(204).send(null);
      },
    );
  };
}
