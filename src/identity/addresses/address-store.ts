import type { Selectable } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { isoTime as iso } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { AddressesTable } from '../tables.ts';
import type { IdentityDb } from '../users/index.ts';

export type AddressType = 'BILLING' | 'SHIPPING';

export type Address = {
  id: string;
  type: AddressType;
  recipient: string;
  line1: string;
  line2: string | null;
  city: string;
  region: string | null;
  postalCode: string;
  country: string;
  phone: string | null;
  isDefault: boolean;
  createdAt: string;
  updatedAt: string;
};

/** The writable fields of an address, already validated and normalised. */
export type AddressFields = Omit<Address, 'id' | 'isDefault' | 'createdAt' | 'updatedAt'>;

/** A user's addresses are capped so one account cannot grow without bound. */
export const MAX_ADDRESSES_PER_USER = 50;

type Owner = { tenantId: string; userId: string };

function toAddress(row: Selectable<AddressesTable>): Address {
  return {
    id: row.id,
    type: row.type,
    recipient: row.recipient,
    line1: row.line1,
    line2: row.line2,
    city: row.city,
    region: row.region,
    postalCode: row.postal_code,
    country: row.country,
    phone: row.phone,
    isDefault: row.is_default,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function toColumns(fields: Partial<AddressFields>) {
  const { postalCode, ...rest } = fields;
  return { ...rest, ...(postalCode !== undefined ? { postal_code: postalCode } : {}) };
}

/**
 * Serialises every address write of one user by locking their users row, so two requests
 * cannot both make "the first address" or both set a default at once. An erased user has no
 * address book: a request that was under way when the erasure committed writes nothing (one
 * that locked first is undone by the erasure, which waits for it and then deletes what it wrote).
 */
async function lockOwner(trx: IdentityDb, owner: Owner): Promise<void> {
  const user = await trx
    .selectFrom('identity.users')
    .select('id')
    .where('tenant_id', '=', owner.tenantId)
    .where('id', '=', owner.userId)
    .where('status', '!=', 'erased')
    .forNoKeyUpdate()
    .executeTakeFirst();
  if (!user) throw new AppError('NOT_FOUND', 'your account no longer exists');
}

function ownAddresses(trx: IdentityDb, owner: Owner) {
  return trx
    .selectFrom('identity.addresses')
    .where('tenant_id', '=', owner.tenantId)
    .where('user_id', '=', owner.userId);
}

async function clearDefault(trx: IdentityDb, owner: Owner, type: AddressType): Promise<void> {
  await trx
    .updateTable('identity.addresses')
    .set({ is_default: false, updated_at: new Date() })
    .where('tenant_id', '=', owner.tenantId)
    .where('user_id', '=', owner.userId)
    .where('type', '=', type)
    .where('is_default', '=', true)
    .execute();
}

/** When the type has addresses but no default, the most recent one (other than `not`, if any other) becomes it. */
async function ensureDefault(trx: IdentityDb, owner: Owner, type: AddressType, not?: string): Promise<void> {
  const ofType = await ownAddresses(trx, owner)
    .select(['id', 'is_default'])
    .where('type', '=', type)
    .execute();
  if (ofType.length === 0 || ofType.some((a) => a.is_default)) return;
  const [pick] = ofType.sort((a, b) => Number(a.id === not) - Number(b.id === not) || (a.id < b.id ? 1 : -1));
  await trx
    .updateTable('identity.addresses')
    .set({ is_default: true, updated_at: new Date() })
    .where('tenant_id', '=', owner.tenantId)
    .where('id', '=', pick!.id)
    .execute();
}

/**
 * Each user's shipping address in one statement: the one named (when it is theirs) or their
 * default shipping address; a user with neither is absent from the map.
 */
export async function shippingAddressesOf(
  trx: IdentityDb,
  wanted: { userId: string; addressId?: string | undefined }[],
): Promise<Map<string, Address>> {
  const result = new Map<string, Address>();
  if (wanted.length === 0) return result;
  const users = [...new Set(wanted.map((w) => w.userId))];
  const ids = wanted.flatMap((w) => (w.addressId ? [w.addressId.toLowerCase()] : []));
  const rows = await trx
    .selectFrom('identity.addresses')
    .selectAll()
    .where('user_id', 'in', users)
    .where('type', '=', 'SHIPPING')
    .where((eb) =>
      ids.length > 0
        ? eb.or([eb('is_default', '=', true), eb('id', 'in', ids)])
        : eb('is_default', '=', true),
    )
    .execute();
  for (const w of wanted) {
    const own = rows.filter((r) => r.user_id === w.userId);
    const row = w.addressId
      ? own.find((r) => r.id === w.addressId!.toLowerCase())
      : own.find((r) => r.is_default);
    if (row) result.set(w.userId, toAddress(row));
  }
  return result;
}

/** The user's addresses, defaults first, then newest first. */
export async function listAddresses(trx: IdentityDb, owner: Owner): Promise<Address[]> {
  const rows = await ownAddresses(trx, owner)
    .selectAll()
    .orderBy('type')
    .orderBy('is_default', 'desc')
    .orderBy('id', 'desc')
    .execute();
  return rows.map(toAddress);
}

/** One of the user's addresses; anyone else's (or another tenant's) is a 404. */
export async function getAddress(trx: IdentityDb, owner: Owner, id: string): Promise<Address> {
  const row = await ownAddresses(trx, owner).selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `address ${id} not found`);
  return toAddress(row);
}

/** Adds an address; the first of its type, or one asked to be, becomes the type's default. */
export async function createAddress(
  trx: IdentityDb,
  owner: Owner,
  fields: AddressFields,
  isDefault: boolean | undefined,
): Promise<Address> {
  await lockOwner(trx, owner);
  const existing = await ownAddresses(trx, owner).select(['type']).execute();
  if (existing.length >= MAX_ADDRESSES_PER_USER) {
    throw new AppError('CONFLICT', `an account holds at most ${MAX_ADDRESSES_PER_USER} addresses`);
  }
  const first = !existing.some((a) => a.type === fields.type);
  if (isDefault === true && !first) await clearDefault(trx, owner, fields.type);
  const now = new Date();
  const row = await trx
    .insertInto('identity.addresses')
    .values({
      id: uuidv7(),
      tenant_id: owner.tenantId,
      user_id: owner.userId,
      type: fields.type,
      recipient: fields.recipient,
      line1: fields.line1,
      line2: fields.line2,
      city: fields.city,
      region: fields.region,
      postal_code: fields.postalCode,
      country: fields.country,
      phone: fields.phone,
      is_default: first || isDefault === true,
      created_at: now,
      updated_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toAddress(row);
}

/**
 * Changes some fields of an address. isDefault true takes the default from the type's other
 * address; isDefault false, or moving to the other type, hands it to the most recent other one.
 */
export async function updateAddress(
  trx: IdentityDb,
  owner: Owner,
  id: string,
  fields: Partial<AddressFields>,
  isDefault: boolean | undefined,
): Promise<Address> {
  await lockOwner(trx, owner);
  const current = await getAddress(trx, owner, id);
  const type = fields.type ?? current.type;
  const moved = type !== current.type;
  if (isDefault === true) await clearDefault(trx, owner, type);
  const keepDefault = isDefault ?? (current.isDefault && !moved);
  await trx
    .updateTable('identity.addresses')
    .set({ ...toColumns(fields), is_default: keepDefault, updated_at: new Date() })
    .where('tenant_id', '=', owner.tenantId)
    .where('id', '=', id)
    .execute();
  // current.id, not id: ensureDefault compares ids as text, and the path may spell one in capitals.
  await ensureDefault(trx, owner, current.type, current.id);
  if (moved) await ensureDefault(trx, owner, type, current.id);
  return getAddress(trx, owner, id);
}

/** Deletes an address; when it was the default, the most recent other of its type takes over. */
export async function deleteAddress(trx: IdentityDb, owner: Owner, id: string): Promise<void> {
  await lockOwner(trx, owner);
  const deleted = await trx
    .deleteFrom('identity.addresses')
    .where('tenant_id', '=', owner.tenantId)
    .where('user_id', '=', owner.userId)
    .where('id', '=', id)
    .returning(['type', 'is_default'])
    .executeTakeFirst();
  if (!deleted) throw new AppError('NOT_FOUND', `address ${id} not found`);
  if (deleted.is_default) await ensureDefault(trx, owner, deleted.type);
}
