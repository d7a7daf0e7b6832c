import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import { AppError, requireUser, userOf } from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { passwordHashingBudget, verifyPassword } from '../passwords.ts';
import { changePassword } from './set-password.ts';
import { NewPassword, SECURITY } from './user-schemas.ts';

const PasswordBody = Type.Object(
  {
    currentPassword: Type.String({ minLength: 1, maxLength: 128 }),
    newPassword: NewPassword,
  },
  { additionalProperties: false },
);

/** PUT /users/password: the signed-in user changes their password; their other sessions end. */
export function passwordRoutes(deps: IdentityDeps) {
  // A wrong current password counts as a failed sign-in of the account (same budget as login).
  const throttle = deps.loginThrottle;
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.put(
      '/users/password',
      {
        preValidation: requireUser(),
        // Two argon2 hashes a change: the per-IP budget of logins too, counted apart.
        preHandler: passwordHashingBudget(
          app,
          deps.ctx.config.rateLimit.loginPerIpPerMinute,
          'password-change',
        ),
        schema: {
          tags: ['users'],
          security: SECURITY,
          summary: 'Change your password; every other session of yours is signed out',
          description:
            'A wrong currentPassword is 401 INVALID_CREDENTIALS and counts as a failed sign-in of the ' +
            'account. A password changed by another request after this one checked it is 401 ' +
            'INVALID_CREDENTIALS too (uncounted): of two racing changes, one wins. The session making the ' +
            'request stays signed in. Limited per IP per minute as logins ' +
            'are (MERCATO_LOGIN_RATE_LIMIT, 429 RATE_LIMITED).',
          body: PasswordBody,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { tenantId, tenantSlug, userId, sessionId } = userOf(request);
        const { currentPassword, newPassword } = request.body;
        const account = await withTenant(deps.db, tenantId, (trx) =>
          trx
            .selectFrom('identity.users')
            .select(['email', 'password_hash'])
            .where('tenant_id', '=', tenantId)
            .where('id', '=', userId)
            .where('status', '=', 'active')
            .executeTakeFirst(),
        );
        if (!account) throw new AppError('INVALID_TOKEN', 'your account is no longer active');
        await throttle.admit(tenantSlug, account.email, request.ip);
        // Hashing runs outside any transaction: embedded PGlite has one connection to share.
        if (!(await verifyPassword(account.password_hash, currentPassword))) {
          await throttle.failed(tenantSlug, account.email);
          throw new AppError('INVALID_CREDENTIALS', 'the current password is wrong');
        }
        await throttle.succeeded(tenantSlug, account.email, request.ip);
        if (newPassword === currentPassword) {
          throw new AppError('VALIDATION_FAILED', 'the new password is the current one', {
            errors: [{ in: 'body', pointer: '/newPassword', message: 'must differ from currentPassword' }],
          });
        }
        // Only over the hash just checked: a change (or reset) committed meanwhile wins, this one fails.
        const changed = await changePassword(deps, {
          tenantId,
          userId,
          password: newPassword,
          keepSession: sessionId,
          currentHash: account.password_hash,
        });
        if (!changed) throw new AppError('INVALID_CREDENTIALS', 'the password changed meanwhile');
        return reply.code(204).send(null);
      },
    );
  };
}
