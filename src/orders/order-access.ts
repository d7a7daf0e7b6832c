import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { isStaff } from '../platform/http/index.ts';

/** The permission an API key needs to read every order of its tenant. */
export const READ_PERMISSION = 'orders:read';

/** The header a guest sends the token of the cart they checked out (as the cart module names it). */
export const CART_TOKEN_HEADER = 'x-cart-token';

/**
 * Who reads orders: staff (staff, operator and admin users, API keys with orders:read) read any
 * of the tenant's; a signed-in customer their own; anyone else (an anonymous shopper naming the
 * store with X-Tenant, a storefront API key acting for guests) a guest order whose cart token
 * they send.
 */
export type Reader =
  | { kind: 'staff' }
  | { kind: 'customer'; customerId: string }
  | { kind: 'guest'; tokenHash: string | undefined };

/** SHA-256 (hex) of the request's X-Cart-Token, as the cart stores it; undefined without one. */
function cartTokenHash(request: FastifyRequest): string | undefined {
  const token = request.headers[CART_TOKEN_HEADER];
  if (typeof token !== 'string' || token.length === 0 || token.length > 200) return undefined;
  return createHash('sha256').update(token).digest('hex');
}

export function readerOf(request: FastifyRequest): Reader {
  const principal = request.principal;
  if (isStaff(principal, READ_PERMISSION)) return { kind: 'staff' };
  if (principal?.kind === 'user') return { kind: 'customer', customerId: principal.userId };
  return { kind: 'guest', tokenHash: cartTokenHash(request) };
}

/**
 * Whether the reader may see the order. Callers answer 404 when not, as for an order that does
 * not exist: a customer cannot tell another's order from none.
 */
export function mayRead(
  reader: Reader,
  order: { customer_id: string | null; guest_token_hash: string | null },
): boolean {
  switch (reader.kind) {
    case 'staff':
      return true;
    case 'customer':
      return order.customer_id === reader.customerId;
    case 'guest':
      return reader.tokenHash !== undefined && order.guest_token_hash === reader.tokenHash;
  }
}
