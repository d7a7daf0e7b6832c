import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { APP_ROLE, isoTime as iso, withSystem } from '../../platform/db/index.ts';
import { AppError, PLATFORM_TENANT } from '../../platform/http/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import { checkFields, RULES } from '../account-fields.ts';
import { hashPassword } from '../passwords.ts';
import type { IdentityTables, TenantsTable } from '../tables.ts';
import { createUser, isUniqueViolation, type User } from '../users/user-store.ts';

export type TenantStatus = 'active' | 'suspended';

export type Tenant = {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  createdAt: string;
  updatedAt: string;
};

export type NewTenant = {
  slug: string;
  name: string;
  adminEmail: string;
  adminPassword: string;
  adminName?: string;
};

/**
 * Runs in a new tenant's creation transaction, under that tenant's row-level security, after its
 * row is inserted: another module creates what every tenant has (the WAL: its system namespaces).
 * A hook that throws undoes the creation. Passed in through IdentityDeps.onTenantCreated.
 */
// biome-ignore lint/suspicious/noExplicitAny: the hook's module casts to its own tables
export type TenantCreatedHook = (trx: Transaction<any>, tenantId: string) => Promise<void>;

/** Maps a tenants row onto the API shape. */
export function toTenant(row: Selectable<TenantsTable>): Tenant {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

/** The tenant with that slug, or undefined. Runs as the system: no tenant is known yet. */
export async function findTenantBySlug(
  db: Kysely<IdentityTables>,
  slug: string,
): Promise<{ id: string; slug: string; name: string; status: TenantStatus } | undefined> {
  return withSystem(db, (trx) =>
    trx
      .selectFrom('identity.tenants')
      .select(['id', 'slug', 'name', 'status'])
      .where('slug', '=', slug.toLowerCase())
      .executeTakeFirst(),
  );
}

/** The tenant with that id, or undefined. Runs as the system (platform admins look across tenants). */
export async function findTenantById(db: Kysely<IdentityTables>, id: string): Promise<Tenant | undefined> {
  const row = await withSystem(db, (trx) =>
    trx.selectFrom('identity.tenants').selectAll().where('id', '=', id).executeTakeFirst(),
  );
  return row ? toTenant(row) : undefined;
}

/**
 * Creates a tenant and its first admin in one transaction: the tenant row as the system (the
 * app role may not insert tenants), then the admin and what `hooks` add under the new tenant's
 * row-level security. Input the API would refuse is VALIDATION_FAILED naming each field
 * (`/slug`, the reserved `platform` too, `/name`, `/adminEmail`, `/adminPassword`, `/adminName`),
 * whoever the caller; a taken slug is TENANT_SLUG_TAKEN.
 */
export async function createTenant(
  db: Kysely<IdentityTables>,
  input: NewTenant,
  hooks: readonly TenantCreatedHook[] = [],
): Promise<{ tenant: Tenant; admin: User }> {
  checkFields([
    ['/slug', RULES.slug, input.slug],
    ['/name', RULES.name, input.name],
    ['/adminEmail', RULES.email, input.adminEmail],
    ['/adminPassword', RULES.password, input.adminPassword],
    ...(input.adminName !== undefined ? [['/adminName', RULES.name, input.adminName] as const] : []),
  ]);
  const slug = input.slug;
  // Hashed before the transaction: it holds no connection (PGlite has one) meanwhile.
  const passwordHash = await hashPassword(input.adminPassword, '/adminPassword');
  try {
    return await withSystem(db, async (trx) => {
      const taken = await trx
        .selectFrom('identity.tenants')
        .select('id')
        .where('slug', '=', slug)
        .executeTakeFirst();
      if (taken) throw new AppError('TENANT_SLUG_TAKEN', `tenant slug ${slug} is taken`);
      const now = new Date();
      const row = await trx
        .insertInto('identity.tenants')
        .values({ id: uuidv7(), slug, name: input.name, created_at: now, updated_at: now })
        .returningAll()
        .executeTakeFirstOrThrow();
      await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${row.id}, true)`.execute(
        trx,
      );
      const admin = await createUser(trx, {
        tenantId: row.id,
        email: input.adminEmail,
        passwordHash,
        name: input.adminName ?? 'Administrator',
        role: 'admin',
      });
      for (const hook of hooks) await hook(trx, row.id);
      return { tenant: toTenant(row), admin };
    });
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new AppError('TENANT_SLUG_TAKEN', `tenant slug ${slug} is taken`, {}, { cause: error });
    }
    throw error;
  }
}

/** Up to limit tenants in creation order (UUIDv7 ids sort by time), after the id `after`. */
export async function listTenants(
  db: Kysely<IdentityTables>,
  limit: number,
  after: string | undefined,
): Promise<Tenant[]> {
  const rows = await withSystem(db, (trx) => {
    let query = trx.selectFrom('identity.tenants').selectAll().orderBy('id').limit(limit);
    if (after) query = query.where('id', '>', after);
    return query.execute();
  });
  return rows.map(toTenant);
}

export type TenantPatch = { name?: string | undefined; status?: TenantStatus | undefined };

/**
 * Renames, suspends or resumes the tenant with that slug (or id); undefined when there is none. A
 * name or status the API would refuse is VALIDATION_FAILED naming `/name` or `/status`.
 * The platform tenant cannot be suspended (CONFLICT; migration 0013 also refuses it). A status
 * change is announced on commit (migration 0013): each process's tenant-status cache and the WAL
 * (whose namespaces of the tenant pause or resume) hear it.
 */
export async function updateTenant(
  db: Kysely<IdentityTables>,
  slugOrId: string,
  patch: TenantPatch,
): Promise<Tenant | undefined> {
  checkFields([
    ...(patch.name !== undefined ? [['/name', RULES.name, patch.name] as const] : []),
    ...(patch.status !== undefined ? [['/status', RULES.tenantStatus, patch.status] as const] : []),
  ]);
  const row = await withSystem(db, async (trx) => {
    const current = await trx
      .selectFrom('identity.tenants')
      .selectAll()
      .where(isUuid(slugOrId) ? 'id' : 'slug', '=', slugOrId.toLowerCase())
      .forUpdate()
      .executeTakeFirst();
    if (!current) return undefined;
    if (current.slug === PLATFORM_TENANT && patch.status === 'suspended') {
      throw new AppError('CONFLICT', `the ${PLATFORM_TENANT} tenant cannot be suspended`);
    }
    return trx
      .updateTable('identity.tenants')
      .set({
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        updated_at: new Date(),
      })
      .where('id', '=', current.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  return row ? toTenant(row) : undefined;
}
