import { sql } from 'kysely';
import { revokeUserSessions } from '../tokens/index.ts';
import { keepAnAdmin } from './staff-store.ts';
import { getUserById, type IdentityDb } from './user-store.ts';

/** The address an erased user's row keeps: unique, and no mail can ever reach it. */
export const erasedEmail = (userId: string) => `erased+${userId}@invalid`;

/**
 * Erases a user of the tenant (right to erasure): the row stays, so audit entries and foreign
 * keys still point at something, but its email, name, phone and password hash are blanked, its
 * addresses are deleted, its status becomes 'erased', its sessions are revoked and the API keys
 * it created are revoked. An erased user reads as absent everywhere (a second erasure is 404).
 * The tenant keeps an active admin: erasing the last one (yourself included) is CONFLICT.
 * Returns the ids of the API keys revoked (the caller drops them from its process cache).
 */
export async function eraseUser(
  trx: IdentityDb,
  tenantId: string,
  userId: string,
): Promise<{ revokedApiKeys: string[] }> {
  const user = await getUserById(trx, tenantId, userId);
  if (user.role === 'admin' && user.status === 'active') await keepAnAdmin(trx, tenantId, user);
  await trx
    .updateTable('identity.users')
    .set({
      // The stored id, lowercase: the path may spell it in capitals, which the email check refuses.
      email: erasedEmail(user.id),
      name: '',
      phone: null,
      password_hash: '',
      status: 'erased',
      updated_at: new Date(),
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', userId)
    .execute();
  await trx
    .deleteFrom('identity.addresses')
    .where('tenant_id', '=', tenantId)
    .where('user_id', '=', userId)
    .execute();
  await revokeUserSessions(trx, tenantId, userId);
  const keys = await trx
    .updateTable('identity.api_keys')
    .set({ revoked_at: sql<Date>`now()` })
    .where('tenant_id', '=', tenantId)
    .where('created_by', '=', userId)
    .where('revoked_at', 'is', null)
    .returning('id')
    .execute();
  return { revokedApiKeys: keys.map((k) => k.id) };
}
