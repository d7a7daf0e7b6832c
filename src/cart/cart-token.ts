import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AppError } from '../platform/http/index.ts';
import type { CartLocator } from './cart-store.ts';

/** The header a guest sends their cart token in (and gets it back in, once, at creation). */
export const CART_TOKEN_HEADER = 'x-cart-token';

const TOKEN = /^ct_[A-Za-z0-9_-]{43}$/;

/** A new guest cart token: 256 random bits. Only its hash is stored. */
export function newCartToken(): string {
  return `ct_${randomBytes(32).toString('base64url')}`;
}

export function hashCartToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const noCart = () =>
  new AppError(
    'NOT_FOUND',
    'cart not found: guests send the token POST /api/v1/cart gave them in X-Cart-Token',
  );

/** The hash of the request's X-Cart-Token; 404 when it is missing or cannot be one of ours. */
export function guestTokenHash(request: FastifyRequest): string {
  const token = request.headers[CART_TOKEN_HEADER];
  if (typeof token !== 'string' || !TOKEN.test(token)) throw noCart();
  return hashCartToken(token);
}

/**
 * Which cart a storefront request means: a signed-in user's own cart (X-Cart-Token is then read
 * only by /cart/merge), else the guest cart whose token it sends (anonymous shoppers, and API
 * keys of headless storefronts acting for guests).
 */
export function cartLocatorOf(request: FastifyRequest): CartLocator {
  const principal = request.principal;
  if (principal?.kind === 'user') return { kind: 'customer', customerId: principal.userId };
  return { kind: 'guest', tokenHash: guestTokenHash(request) };
}
