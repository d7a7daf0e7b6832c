import { type Selectable, sql, type Updateable } from 'kysely';
import { isoTime as iso } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { CartAddress, CartsTable, CartTrx, LinesTable } from './tables.ts';

/** How a request names its cart: a customer's own, a guest's by token hash, or by id (module API). */
export type CartLocator =
  | { kind: 'customer'; customerId: string }
  | { kind: 'guest'; tokenHash: string }
  | { kind: 'id'; cartId: string };

export type CartRow = {
  id: string;
  customerId: string | null;
  currency: string | null;
  shippingAddress: CartAddress | null;
  billingAddress: CartAddress | null;
  shippingOptionId: string | null;
  /** Units of each line (by id) the order placed from the cart took (cart-checkout.ts); null when none. */
  checkoutLines: Record<string, number> | null;
  createdAt: string;
  updatedAt: string;
  activeAt: Date;
};

export type LineRow = {
  id: string;
  variantId: string;
  productId: string;
  sku: string;
  productTitle: string;
  variantTitle: string;
  options: Record<string, string>;
  image: string | null;
  quantity: number;
  unitPrice: number;
  priceChangedFrom: number | null;
  createdAt: string;
  updatedAt: string;
};

/** Lines a cart may hold, and units of one line. */
export const MAX_LINES = 100;
export const MAX_QUANTITY = 1000;

function toCart(row: Selectable<CartsTable>): CartRow {
  return {
    id: row.id,
    customerId: row.customer_id,
    currency: row.currency,
    shippingAddress: row.shipping_address,
    billingAddress: row.billing_address,
    shippingOptionId: row.shipping_option_id,
    checkoutLines: row.checkout_lines,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    activeAt: new Date(row.active_at),
  };
}

export function toLine(row: Selectable<LinesTable>): LineRow {
  return {
    id: row.id,
    variantId: row.variant_id,
    productId: row.product_id,
    sku: row.sku,
    productTitle: row.product_title,
    variantTitle: row.variant_title,
    options: row.options,
    image: row.image,
    quantity: row.quantity,
    unitPrice: Number(row.unit_price),
    priceChangedFrom: row.price_changed_from === null ? null : Number(row.price_changed_from),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function cartQuery(trx: CartTrx, tenantId: string, locator: CartLocator, lock: boolean | 'nowait') {
  let query = trx
    .selectFrom('cart.carts')
    .selectAll('cart.carts')
    .where('cart.carts.tenant_id', '=', tenantId);
  if (locator.kind === 'customer') query = query.where('customer_id', '=', locator.customerId);
  else if (locator.kind === 'guest') query = query.where('token_hash', '=', locator.tokenHash);
  else query = query.where('cart.carts.id', '=', locator.cartId);
  if (lock) query = lock === 'nowait' ? query.forUpdate().noWait() : query.forUpdate();
  return query;
}

/**
 * The cart a locator names, locked FOR UPDATE when asked (every change locks it first); 'nowait'
 * fails at once (SQLSTATE 55P03) when another transaction holds it.
 */
export async function findCart(
  trx: CartTrx,
  tenantId: string,
  locator: CartLocator,
  lock: boolean | 'nowait' = false,
): Promise<CartRow | undefined> {
  const row = await cartQuery(trx, tenantId, locator, lock).executeTakeFirst();
  return row ? toCart(row) : undefined;
}

/**
 * The cart (not locked) with its lines (listLines' order), in one statement: for a transaction
 * that already holds the cart's lock. A locking read must read the lines in a statement after the
 * lock: this statement's snapshot predates a wait for the lock, and would miss the lines the
 * transaction it waited for wrote.
 */
export async function findLockedCartWithLines(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
): Promise<{ cart: CartRow; lines: LineRow[] } | undefined> {
  const row = await cartQuery(trx, tenantId, { kind: 'id', cartId }, false)
    .select(
      sql<Selectable<LinesTable>[]>`coalesce((select json_agg(l order by l.id) from cart.lines l
        where l.tenant_id = cart.carts.tenant_id and l.cart_id = cart.carts.id), '[]')`.as('lines'),
    )
    .executeTakeFirst();
  if (!row) return undefined;
  const { lines, ...cart } = row;
  return { cart: toCart(cart), lines: lines.map(toLine) };
}

/** A new guest cart holding the hash of its token. */
export async function insertGuestCart(
  trx: CartTrx,
  tenantId: string,
  tokenHash: string,
  currency: string | null,
): Promise<CartRow> {
  const row = await trx
    .insertInto('cart.carts')
    .values({ id: uuidv7(), tenant_id: tenantId, token_hash: tokenHash, currency })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toCart(row);
}

/** The customer's cart, created when they have none (two concurrent creations make one), locked. */
export async function ensureCustomerCart(
  trx: CartTrx,
  tenantId: string,
  customerId: string,
  currency: string | null,
): Promise<{ cart: CartRow; created: boolean }> {
  const inserted = await trx
    .insertInto('cart.carts')
    .values({ id: uuidv7(), tenant_id: tenantId, customer_id: customerId, currency })
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'customer_id']).where('customer_id', 'is not', null).doNothing(),
    )
    .returning('id')
    .executeTakeFirst();
  const cart = await findCart(trx, tenantId, { kind: 'customer', customerId }, true);
  if (!cart) throw new Error(`customer cart of ${customerId} vanished while being created`);
  return { cart, created: inserted !== undefined };
}

/**
 * The lines of the cart a locator names (listLines' order), found by the locator in the same
 * statement: sent right after findCart's lock, without waiting for it (one round trip for both).
 * It runs once the lock is held, with a snapshot of its own taken then, so it sees every line the
 * transaction the lock waited for wrote.
 */
export async function listLinesOf(trx: CartTrx, tenantId: string, locator: CartLocator): Promise<LineRow[]> {
  if (locator.kind === 'id') return listLines(trx, tenantId, locator.cartId);
  const rows = await trx
    .selectFrom('cart.lines')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('cart_id', '=', (eb) =>
      eb
        .selectFrom('cart.carts')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where(
          locator.kind === 'customer' ? 'customer_id' : 'token_hash',
          '=',
          locator.kind === 'customer' ? locator.customerId : locator.tokenHash,
        ),
    )
    .orderBy('id')
    .execute();
  return rows.map(toLine);
}

export async function listLines(trx: CartTrx, tenantId: string, cartId: string): Promise<LineRow[]> {
  const rows = await trx
    .selectFrom('cart.lines')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('cart_id', '=', cartId)
    .orderBy('id')
    .execute();
  return rows.map(toLine);
}

export type LineFields = Omit<LineRow, 'id' | 'createdAt' | 'updatedAt'>;

function lineColumns(fields: Partial<LineFields>) {
  const columns: Updateable<LinesTable> = {};
  if (fields.variantId !== undefined) columns.variant_id = fields.variantId;
  if (fields.productId !== undefined) columns.product_id = fields.productId;
  if (fields.sku !== undefined) columns.sku = fields.sku;
  if (fields.productTitle !== undefined) columns.product_title = fields.productTitle;
  if (fields.variantTitle !== undefined) columns.variant_title = fields.variantTitle;
  if (fields.options !== undefined) columns.options = JSON.stringify(fields.options);
  if (fields.image !== undefined) columns.image = fields.image;
  if (fields.quantity !== undefined) columns.quantity = fields.quantity;
  if (fields.unitPrice !== undefined) columns.unit_price = fields.unitPrice;
  if (fields.priceChangedFrom !== undefined) columns.price_changed_from = fields.priceChangedFrom;
  return columns;
}

export async function insertLine(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  fields: LineFields,
): Promise<void> {
  await trx
    .insertInto('cart.lines')
    .values({
      id: uuidv7(),
      tenant_id: tenantId,
      cart_id: cartId,
      variant_id: fields.variantId,
      product_id: fields.productId,
      sku: fields.sku,
      product_title: fields.productTitle,
      variant_title: fields.variantTitle,
      options: JSON.stringify(fields.options),
      image: fields.image,
      quantity: fields.quantity,
      unit_price: fields.unitPrice,
      price_changed_from: fields.priceChangedFrom,
    })
    .execute();
}

export async function updateLine(
  trx: CartTrx,
  tenantId: string,
  lineId: string,
  fields: Partial<LineFields>,
): Promise<void> {
  await trx
    .updateTable('cart.lines')
    .set({ ...lineColumns(fields), updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', lineId)
    .execute();
}

/** Deletes one line (all of the cart's when lineId is undefined). */
export async function deleteLines(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  lineId?: string,
): Promise<number> {
  let query = trx.deleteFrom('cart.lines').where('tenant_id', '=', tenantId).where('cart_id', '=', cartId);
  if (lineId !== undefined) query = query.where('id', '=', lineId);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

/**
 * Sets each of the cart's `lines` to the quantity `quantityOf` gives it: a line given 0 or less
 * goes, one whose quantity stays is not written.
 */
export async function setQuantities(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  lines: LineRow[],
  quantityOf: (line: LineRow) => number,
): Promise<void> {
  for (const line of lines) {
    const quantity = quantityOf(line);
    if (quantity <= 0) await deleteLines(trx, tenantId, cartId, line.id);
    else if (quantity !== line.quantity) await updateLine(trx, tenantId, line.id, { quantity });
  }
}

export type CartChanges = {
  currency?: string;
  shippingAddress?: CartAddress | null;
  billingAddress?: CartAddress | null;
  shippingOptionId?: string | null;
  customerId?: string;
  tokenHash?: null;
};

/** Records a change to the cart (and that it was used now). */
export async function updateCart(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  changes: CartChanges,
): Promise<void> {
  const now = new Date();
  const set: Record<string, unknown> = { updated_at: now, active_at: now };
  if (changes.currency !== undefined) set['currency'] = changes.currency;
  if (changes.shippingAddress !== undefined)
    set['shipping_address'] =
      changes.shippingAddress === null ? null : JSON.stringify(changes.shippingAddress);
  if (changes.billingAddress !== undefined)
    set['billing_address'] = changes.billingAddress === null ? null : JSON.stringify(changes.billingAddress);
  if (changes.shippingOptionId !== undefined) set['shipping_option_id'] = changes.shippingOptionId;
  if (changes.customerId !== undefined) set['customer_id'] = changes.customerId;
  if (changes.tokenHash !== undefined) set['token_hash'] = changes.tokenHash;
  await trx
    .updateTable('cart.carts')
    .set(set)
    .where('tenant_id', '=', tenantId)
    .where('id', '=', cartId)
    .execute();
}

/** Marks the cart as used (a read) without counting as a change, at most once a minute; returns it as it is now. */
export async function touchCart(trx: CartTrx, tenantId: string, cart: CartRow): Promise<CartRow> {
  if (Date.now() - cart.activeAt.getTime() < 60_000) return cart;
  const activeAt = new Date();
  await trx
    .updateTable('cart.carts')
    .set({ active_at: activeAt })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', cart.id)
    .execute();
  return { ...cart, activeAt };
}

export async function deleteCart(trx: CartTrx, tenantId: string, cartId: string): Promise<void> {
  await trx.deleteFrom('cart.carts').where('tenant_id', '=', tenantId).where('id', '=', cartId).execute();
}
