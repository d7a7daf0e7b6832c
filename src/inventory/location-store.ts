import { sql } from 'kysely';
import { lockNamed } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { InventoryTrx } from './tables.ts';
import { type Location, toLocation } from './views.ts';

/** A tenant's locations are capped so one tenant cannot grow them without bound. */
export const MAX_LOCATIONS = 200;

const DEFAULT_NAME = 'Default location';

/**
 * The tenant's default location, created on first use. Idempotent under concurrency: the
 * partial unique index (one default per tenant) makes a second creator's insert do nothing.
 */
export async function defaultLocation(trx: InventoryTrx, tenantId: string): Promise<Location> {
  const found = await trx
    .selectFrom('inventory.locations')
    .selectAll()
    .where('is_default', '=', true)
    .executeTakeFirst();
  if (found) return toLocation(found);
  await sql`
    insert into inventory.locations (id, tenant_id, name, is_default)
    values (${uuidv7()}, ${tenantId}, ${DEFAULT_NAME}, true)
    on conflict (tenant_id) where is_default do nothing`.execute(trx);
  const row = await trx
    .selectFrom('inventory.locations')
    .selectAll()
    .where('is_default', '=', true)
    .executeTakeFirstOrThrow();
  return toLocation(row);
}

export async function listLocations(trx: InventoryTrx, tenantId: string): Promise<Location[]> {
  await defaultLocation(trx, tenantId);
  const rows = await trx
    .selectFrom('inventory.locations')
    .selectAll()
    .orderBy('is_default', 'desc')
    .orderBy('id')
    .execute();
  return rows.map(toLocation);
}

/**
 * A location, or NOT_FOUND. `lock`: 'update' (it is being changed or deleted) or 'key share' (an
 * item is being put there): a delete waits for the items being created and answers
 * LOCATION_IN_USE, an item created while its location is being deleted answers 404, instead of
 * either failing on the items' foreign key (500).
 */
export async function getLocation(
  trx: InventoryTrx,
  id: string,
  lock?: 'update' | 'key share',
): Promise<Location> {
  let query = trx.selectFrom('inventory.locations').selectAll().where('id', '=', id);
  if (lock === 'update') query = query.forUpdate();
  else if (lock === 'key share') query = query.forKeyShare();
  const row = await query.executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `location ${id} not found`);
  return toLocation(row);
}

/**
 * Serialises the changes of the tenant's default location: two requests making different
 * locations the default each cleared the old default and then collided on the one-default index
 * (409 "location code undefined is already used"). After this lock, the next statement sees the
 * default the previous holder set, and clears it.
 */
async function lockDefault(trx: InventoryTrx, tenantId: string): Promise<void> {
  await lockNamed(trx, `inventory.locations.default:${tenantId}`);
}

function codeTaken(error: unknown, code: string | null | undefined): never {
  if ((error as { code?: string }).code === '23505') {
    throw new AppError('CONFLICT', `location code ${JSON.stringify(code)} is already used`);
  }
  throw error;
}

async function clearDefault(trx: InventoryTrx): Promise<void> {
  await trx
    .updateTable('inventory.locations')
    .set({ is_default: false, updated_at: new Date() })
    .where('is_default', '=', true)
    .execute();
}

export async function createLocation(
  trx: InventoryTrx,
  tenantId: string,
  fields: { name: string; code?: string | null | undefined; isDefault?: boolean | undefined },
): Promise<Location> {
  // Counted under a lock of the tenant's locations: created at once, each passed the count and
  // the tenant ended with more than MAX_LOCATIONS.
  await lockNamed(trx, `inventory.locations:${tenantId}`);
  await defaultLocation(trx, tenantId);
  const { count } = await trx
    .selectFrom('inventory.locations')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  if (Number(count) >= MAX_LOCATIONS) {
    throw new AppError('CONFLICT', `a tenant has at most ${MAX_LOCATIONS} locations`);
  }
  if (fields.isDefault) {
    await lockDefault(trx, tenantId);
    await clearDefault(trx);
  }
  const now = new Date();
  try {
    const row = await trx
      .insertInto('inventory.locations')
      .values({
        id: uuidv7(),
        tenant_id: tenantId,
        name: fields.name,
        code: fields.code ?? null,
        is_default: fields.isDefault === true,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toLocation(row);
  } catch (error) {
    codeTaken(error, fields.code);
  }
}

/** Changes a location; isDefault true moves the default here (false on the default is refused). */
export async function updateLocation(
  trx: InventoryTrx,
  tenantId: string,
  id: string,
  fields: { name?: string | undefined; code?: string | null | undefined; isDefault?: boolean | undefined },
): Promise<Location> {
  if (fields.isDefault === true) await lockDefault(trx, tenantId);
  const current = await getLocation(trx, id, 'update');
  if (fields.isDefault === false && current.isDefault) {
    throw new AppError('CONFLICT', 'a tenant always has a default location: make another one the default');
  }
  if (fields.isDefault === true && !current.isDefault) await clearDefault(trx);
  try {
    const row = await trx
      .updateTable('inventory.locations')
      .set({
        ...(fields.name !== undefined ? { name: fields.name } : {}),
        ...(fields.code !== undefined ? { code: fields.code } : {}),
        ...(fields.isDefault === true ? { is_default: true } : {}),
        updated_at: new Date(),
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return toLocation(row);
  } catch (error) {
    codeTaken(error, fields.code);
  }
}

/**
 * Deletes a location. The default, or one where an item holds stock or reservations, or sold
 * units a committed reservation may still return, is 409 LOCATION_IN_USE. Its empty items go
 * with it, and their ledgers (which net to zero).
 */
export async function deleteLocation(trx: InventoryTrx, id: string): Promise<void> {
  const location = await getLocation(trx, id, 'update');
  if (location.isDefault) throw new AppError('LOCATION_IN_USE', 'the default location cannot be deleted');
  const items = await trx
    .selectFrom('inventory.items')
    .select(['id', 'on_hand', 'reserved'])
    .where('location_id', '=', id)
    // In id order, as every writer of items locks them (a reservation batch holding two of
    // them cannot deadlock with this).
    .orderBy('id')
    .forUpdate()
    .execute();
  const holding = items.filter((i) => i.on_hand !== 0 || i.reserved !== 0).length;
  if (holding > 0) {
    throw new AppError('LOCATION_IN_USE', `${holding} item(s) still hold stock at location ${id}`, {
      items: holding,
    });
  }
  if (items.length > 0) {
    // A committed reservation can still be returned onto these items (an order cancelled or sent
    // back): deleting them lost the sale's ledger, and the return then failed (500).
    const { committed } = await trx
      .selectFrom('inventory.reservation_lines as l')
      .innerJoin('inventory.reservations as r', 'r.id', 'l.reservation_id')
      .select((eb) => eb.fn.count<number | string>('r.id').distinct().as('committed'))
      .where(
        'l.item_id',
        'in',
        items.map((i) => i.id),
      )
      .where('r.status', '=', 'committed')
      .executeTakeFirstOrThrow();
    if (Number(committed) > 0) {
      throw new AppError(
        'LOCATION_IN_USE',
        `${committed} committed reservation(s) sold stock at location ${id} and may still return it there`,
        { committedReservations: Number(committed) },
      );
    }
    await trx
      .deleteFrom('inventory.items')
      .where(
        'id',
        'in',
        items.map((i) => i.id),
      )
      .execute();
  }
  await trx.deleteFrom('inventory.locations').where('id', '=', id).execute();
}
