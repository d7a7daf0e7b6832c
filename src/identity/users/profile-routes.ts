import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { readAsTenant, withTenant } from '../../platform/db/index.ts';
import { AppError, requireUser, userOf } from '../../platform/http/index.ts';
import { DISPLAY_NAME } from '../account-fields.ts';
import type { IdentityDeps } from '../module.ts';
import { passwordRoutes } from './password-routes.ts';
import { Phone, SECURITY, UserView } from './user-schemas.ts';
import { toUser, updateProfile } from './user-store.ts';

// Email, role, status and tenant are not the user's to change here: unknown fields are a 400.
const ProfileBody = Type.Object(
  {
    name: Type.Optional(Type.String(DISPLAY_NAME)),
    phone: Type.Optional(Type.Union([Phone, Type.Null()])),
  },
  { additionalProperties: false },
);

const base = { tags: ['users'], security: SECURITY };

/** GET and PUT /users/profile, PUT /users/password: the signed-in user's own account. */
export function profileRoutes(deps: IdentityDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    await app.register(passwordRoutes(deps));

    app.get(
      '/users/profile',
      {
        preValidation: requireUser(),
        schema: { ...base, summary: 'The signed-in user', response: { 200: UserView } },
      },
      async (request) => {
        const { tenantId, userId } = userOf(request);
        // Cached per process, dropped on every change to the user; a miss is one primary-key
        // lookup in one round trip. This route is benchmarked against /health/live.
        const user = await deps.profiles.read(tenantId, userId, async () => {
          const [row] = await readAsTenant(deps.db, tenantId, (db) =>
            db
              .selectFrom('identity.users')
              .selectAll()
              .where('id', '=', userId)
              .where('tenant_id', '=', tenantId),
          );
          return row ? toUser(row) : undefined;
        });
        if (!user) throw new AppError('NOT_FOUND', 'your account no longer exists');
        return user;
      },
    );

    app.put(
      '/users/profile',
      {
        preValidation: requireUser(),
        schema: {
          ...base,
          summary: 'Change your name or phone',
          body: ProfileBody,
          response: { 200: UserView },
        },
      },
      async (request) => {
        const { tenantId, userId } = userOf(request);
        const { name, phone } = request.body;
        const user = await withTenant(deps.db, tenantId, (trx) =>
          updateProfile(trx, tenantId, userId, { name, phone }),
        );
        if (!user) throw new AppError('NOT_FOUND', 'your account no longer exists');
        return user;
      },
    );
  };
}
