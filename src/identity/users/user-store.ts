import type { Kysely, Selectable, Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { isoTime as iso } from '../../platform/db/index.ts';
import { AppError, type Role } from '../../platform/http/index.ts';
import { checkFields, RULES } from '../account-fields.ts';
import type { IdentityTables, UsersTable } from '../tables.ts';

/** A handle that can run identity queries: the root Kysely or a transaction of it. */
export type IdentityDb = Transaction<IdentityTables> | Kysely<IdentityTables>;

/** 'erased' users keep their row (blanked) but read as absent everywhere (see erase-user.ts). */
export type UserStatus = 'active' | 'disabled' | 'erased';

/** A user as the API shows it: never the password hash. */
export type User = {
  id: string;
  tenantId: string;
  email: string;
  name: string;
  role: Role;
  status: UserStatus;
  phone: string | null;
  createdAt: string;
  updatedAt: string;
};

export type NewUser = {
  tenantId: string;
  email: string;
  /** hashPassword's hash, made before the caller's transaction (hashing holds no connection). */
  passwordHash: string;
  name: string;
  role: Role;
  phone?: string | null;
};

/** What sign-in needs to check a password and the account's standing. */
export type UserCredentials = {
  id: string;
  tenantId: string;
  email: string;
  name: string;
  role: Role;
  status: UserStatus;
  passwordHash: string;
};

/** Maps a users row onto the API shape. */
export function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    email: row.email,
    name: row.name,
    role: row.role,
    status: row.status,
    phone: row.phone,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** Emails are compared case-insensitively by storing them lowercased and trimmed. */
export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** True when error is PostgreSQL's unique_violation (23505), from pg or PGlite. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}

/**
 * Creates a user in input.tenantId. Input the API would refuse is VALIDATION_FAILED naming each
 * field (`/email`, `/name`, `/role`, `/phone`, `/passwordHash`), whoever the caller; EMAIL_TAKEN
 * when the tenant already has that email.
 */
export async function createUser(trx: IdentityDb, input: NewUser): Promise<User> {
  checkFields([
    ['/email', RULES.email, input.email],
    ['/name', RULES.name, input.name],
    ['/role', RULES.role, input.role],
    ['/phone', RULES.phone, input.phone ?? null],
    ['/passwordHash', RULES.passwordHash, input.passwordHash],
  ]);
  const email = normaliseEmail(input.email);
  // Checked first: inside a PostgreSQL transaction a failed INSERT would abort the caller's transaction.
  if (await findUserByEmail(trx, input.tenantId, email)) {
    throw new AppError('EMAIL_TAKEN', `${email} is already registered`);
  }
  const now = new Date();
  try {
    const row = await trx
      .insertInto('identity.users')
      .values({
        id: uuidv7(),
        tenant_id: input.tenantId,
        email,
        password_hash: input.passwordHash,
        name: input.name,
        phone: input.phone ?? null,
        role: input.role,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toUser(row);
  } catch (error) {
    if (isUniqueViolation(error))
      throw new AppError('EMAIL_TAKEN', `${email} is already registered`, {}, { cause: error });
    throw error;
  }
}

/** The credentials of the tenant's user with that email (any case), or undefined. */
export async function findUserByEmail(
  trx: IdentityDb,
  tenantId: string,
  email: string,
): Promise<UserCredentials | undefined> {
  const row = await trx
    .selectFrom('identity.users')
    .select(['id', 'tenant_id', 'email', 'name', 'role', 'status', 'password_hash'])
    .where('tenant_id', '=', tenantId)
    .where('email', '=', normaliseEmail(email))
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: row.id,
    tenantId: row.tenant_id,
    email: row.email,
    name: row.name,
    role: row.role,
    status: row.status,
    passwordHash: row.password_hash,
  };
}

/** The tenant's user with that id, or undefined (another tenant's id and an erased user read as absent). */
export async function findUserById(trx: IdentityDb, tenantId: string, id: string): Promise<User | undefined> {
  const row = await trx
    .selectFrom('identity.users')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('status', '!=', 'erased')
    .executeTakeFirst();
  return row ? toUser(row) : undefined;
}

/** Like findUserById, but a missing user is a 404. */
export async function getUserById(trx: IdentityDb, tenantId: string, id: string): Promise<User> {
  const user = await findUserById(trx, tenantId, id);
  if (!user) throw new AppError('NOT_FOUND', `user ${id} not found`);
  return user;
}

/**
 * Changes the user's own name and/or phone (PUT /users/profile); VALIDATION_FAILED naming `/name`
 * or `/phone` for what the API would refuse; undefined when the user is gone.
 */
export async function updateProfile(
  trx: IdentityDb,
  tenantId: string,
  userId: string,
  patch: { name?: string | undefined; phone?: string | null | undefined },
): Promise<User | undefined> {
  const { name, phone } = patch;
  checkFields([
    ...(name !== undefined ? [['/name', RULES.name, name] as const] : []),
    ...(phone !== undefined ? [['/phone', RULES.phone, phone] as const] : []),
  ]);
  const row = await trx
    .updateTable('identity.users')
    .set({
      ...(name !== undefined ? { name } : {}),
      ...(phone !== undefined ? { phone } : {}),
      updated_at: new Date(),
    })
    .where('id', '=', userId)
    .where('tenant_id', '=', tenantId)
    .where('status', '!=', 'erased')
    .returningAll()
    .executeTakeFirst();
  return row ? toUser(row) : undefined;
}
