import { sql } from 'kysely';
import { deleteCart, listLines, setQuantities } from './cart-store.ts';
import type { Cart } from './cart-view.ts';
import type { CartTrx } from './tables.ts';

/**
 * Records what the order `orderId` placed from the cart takes: the quantity of each of its lines,
 * as the checkout read them, in the checkout's transaction (it commits with the order, and goes
 * when the checkout is refused). A later order's record replaces it.
 */
export async function recordCheckout(
  trx: CartTrx,
  tenantId: string,
  cart: Cart,
  orderId: string,
): Promise<void> {
  const taken = Object.fromEntries(cart.lines.map((line) => [line.id, line.quantity]));
  await trx
    .updateTable('cart.carts')
    .set({ checkout_lines: JSON.stringify(taken), checkout_order_id: orderId })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', cart.id)
    .execute();
}

/**
 * Takes out of the cart what its completed order took (recordCheckout), in the caller's
 * transaction: each ordered line loses the units ordered (and goes when none are left); what the
 * shopper added meanwhile (another variant, more units, lines merged in at login) stays, and the
 * cart is deleted only when nothing is left. A cart no checkout recorded is deleted whole.
 */
export async function clearCheckedOut(trx: CartTrx, tenantId: string, cartId: string): Promise<void> {
  const cart = await trx
    .selectFrom('cart.carts')
    .select('checkout_lines')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', cartId)
    .forUpdate()
    .executeTakeFirst();
  if (!cart) return;
  const taken = cart.checkout_lines;
  if (!taken) return deleteCart(trx, tenantId, cartId);
  // The usual case, nothing added since the order was placed: the cart goes in one statement. Run
  // after the lock, it sees the lines of a change the lock waited for.
  const { rows: deleted } = await sql`delete from cart.carts c
    where c.tenant_id = ${tenantId} and c.id = ${cartId} and not exists (
      select 1 from cart.lines l where l.tenant_id = ${tenantId} and l.cart_id = ${cartId}
        and l.quantity > coalesce((${JSON.stringify(taken)}::jsonb ->> l.id::text)::int, 0))
    returning c.id`.execute(trx);
  if (deleted.length > 0) return;
  // Something was added (the cart is locked: the delete above saw every line): the ordered units go.
  const lines = await listLines(trx, tenantId, cartId);
  await setQuantities(trx, tenantId, cartId, lines, (line) => line.quantity - (taken[line.id] ?? 0));
  await trx
    .updateTable('cart.carts')
    .set({ checkout_lines: null, checkout_order_id: null, updated_at: new Date() })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', cartId)
    .execute();
}

/**
 * Forgets the record of the order `orderId`, which ended failed or cancelled, in the caller's
 * transaction: its units are the shopper's again (a merge at login moves them). A record of
 * another order (placed from the cart since) stays.
 */
export async function forgetCheckout(
  trx: CartTrx,
  tenantId: string,
  cartId: string,
  orderId: string,
): Promise<void> {
  await trx
    .updateTable('cart.carts')
    .set({ checkout_lines: null, checkout_order_id: null })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', cartId)
    .where('checkout_order_id', '=', orderId)
    .execute();
}
