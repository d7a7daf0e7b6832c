import { AppError, type Role } from '../../platform/http/index.ts';
import { checkFields, RULES } from '../account-fields.ts';
import { getUserById, type IdentityDb, toUser, type User, type UserStatus } from './user-store.ts';

/** Up to limit users of the tenant in creation order after the id `after`, optionally of one role. */
export async function listUsers(
  trx: IdentityDb,
  tenantId: string,
  filter: { role?: Role | undefined; status?: UserStatus | undefined },
  limit: number,
  after: string | undefined,
): Promise<User[]> {
  let query = trx
    .selectFrom('identity.users')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('status', '!=', 'erased');
  if (filter.role) query = query.where('role', '=', filter.role);
  if (filter.status) query = query.where('status', '=', filter.status);
  if (after) query = query.where('id', '>', after);
  const rows = await query.orderBy('id').limit(limit).execute();
  return rows.map(toUser);
}

/**
 * Refuses a change that would leave the tenant without an active admin. The tenant's active
 * admins are locked first, so two admins demoting each other at once are serialised and the
 * second one sees the first one's change.
 */
export async function keepAnAdmin(trx: IdentityDb, tenantId: string, target: User): Promise<void> {
  const admins = await trx
    .selectFrom('identity.users')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('role', '=', 'admin')
    .where('status', '=', 'active')
    .forUpdate()
    .execute();
  if (admins.length === 1 && admins[0]!.id === target.id) {
    throw new AppError('CONFLICT', 'the tenant would be left without an active admin');
  }
}

/** Gives the user a new role; an admin cannot demote themself, and the last admin stays one. */
export async function changeRole(
  trx: IdentityDb,
  tenantId: string,
  actorId: string,
  userId: string,
  role: Role,
): Promise<User> {
  checkFields([['/role', RULES.role, role]]);
  const user = await getUserById(trx, tenantId, userId);
  if (user.role === role) return user;
  // user.id is the stored (lowercase) id: the path may spell the caller's own id in capitals.
  if (user.id === actorId) throw new AppError('CONFLICT', 'an admin cannot change their own role');
  if (user.role === 'admin' && user.status === 'active') await keepAnAdmin(trx, tenantId, user);
  const row = await trx
    .updateTable('identity.users')
    .set({ role, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', userId)
    .returningAll()
    .executeTakeFirstOrThrow();
  return toUser(row);
}

/** Enables or disables the user; disabling revokes their refresh tokens. Nobody disables themself. */
export async function changeStatus(
  trx: IdentityDb,
  tenantId: string,
  actorId: string,
  userId: string,
  status: UserStatus,
): Promise<User> {
  // 'erased' is eraseUser's: set here it would keep the personal data eraseUser blanks.
  checkFields([['/status', RULES.userStatus, status]]);
  const user = await getUserById(trx, tenantId, userId);
  if (user.status === status) return user;
  if (user.id === actorId) throw new AppError('CONFLICT', 'an admin cannot disable themself');
  if (user.role === 'admin' && status === 'disabled') await keepAnAdmin(trx, tenantId, user);
  const row = await trx
    .updateTable('identity.users')
    .set({ status, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', userId)
    .returningAll()
    .executeTakeFirstOrThrow();
  if (status === 'disabled') {
    await trx
      .updateTable('identity.refresh_tokens')
      .set({ revoked_at: new Date() })
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
  }
  return toUser(row);
}
