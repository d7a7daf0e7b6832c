import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyRequest } from 'fastify';
import type { Cart } from '../cart/index.ts';
import type { NewOrder, Order } from '../orders/index.ts';
import { causeOf, withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError, isStaff, requestFingerprint } from '../platform/http/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import type { CheckoutDeps } from './deps.ts';
import type { Held, SagaRunner } from './saga-runner.ts';
import { startSaga } from './start-saga.ts';
import type { CheckoutTrx } from './tables.ts';

export type PlaceOrderBody = {
  cartId?: string;
  lines?: { variantId: string; quantity: number }[];
  currency?: string;
  shippingAddress?: unknown;
  billingAddress?: unknown;
  shippingOptionId?: string;
  email?: string;
  payment: { provider?: string; token: string };
};

/** The order placed (or found again by its Idempotency-Key) and its saga; `held` when the caller holds the new saga's lease. */
export type Placed = { order: Order; sagaId: string | undefined; replayed: boolean; held?: Held };

const codeOf = (error: unknown) => (error as { code?: unknown })?.code;
const isUniqueViolation = (error: unknown) => codeOf(error) === '23505';
/** A row held elsewhere that is not waited for: the cart (nowait), or rarely a stock item (inventory). */
const isCartLocked = (error: unknown) => codeOf(error) === '55P03';

/**
 * A cart another transaction holds is not waited for inside the checkout's transaction (waiting
 * there deadlocked with a checkout of the same key deleting the cart): the transaction is run
 * again after a pause, for about a second (a cart edit or read holds it for milliseconds).
 */
const CART_BUSY_ATTEMPTS = 40;
const CART_BUSY_PAUSE_MS = 25;

/** The key's order, found in a transaction a failed statement aborted: carried out of it (rolled back). */
class FoundEarlier {
  readonly placed: Placed;
  constructor(placed: Placed) {
    this.placed = placed;
  }
}

/** Whose Idempotency-Keys these are: a user, an API key, or the guest holding a cart token. */
function scopeOf(request: FastifyRequest, guestTokenHash: string | null): string {
  const p = request.principal;
  if (p?.kind === 'user') return `user:${p.userId}`;
  if (p?.kind === 'apiKey') return `key:${p.apiKeyId}${guestTokenHash ? `:cart:${guestTokenHash}` : ''}`;
  return `guest:${guestTokenHash}`;
}

/**
 * Whether the caller places orders as staff (any cart by id, or explicit lines): a staff user
 * always; an API key with orders:write when it names a cart or gives lines (without either, such a
 * key checks out the shopper's cart of X-Cart-Token, as a storefront's server does).
 */
const asStaff = (request: FastifyRequest, body: PlaceOrderBody) =>
  isStaff(request.principal, 'orders:write') &&
  (request.principal?.kind === 'user' || body.lines !== undefined || body.cartId !== undefined);

/**
 * Whose Idempotency-Keys the order's is, known before its cart is read (a shopper's cart is
 * deleted once the order is placed: a retry must still find the order).
 */
function idempotencyScopeOf(deps: CheckoutDeps, request: FastifyRequest, body: PlaceOrderBody): string {
  return scopeOf(request, body.lines || asStaff(request, body) ? null : deps.cart.shopperTokenHash(request));
}

/** The cart to check out: staff name any cart by id; a shopper checks out their own. */
async function cartToCheckOut(
  deps: CheckoutDeps,
  tenantId: string,
  request: FastifyRequest,
  body: PlaceOrderBody,
  trx?: CheckoutTrx,
): Promise<{ cart: Cart; guestTokenHash: string | null }> {
  const notFound = () => new AppError('NOT_FOUND', `cart ${body.cartId ?? ''} not found`.trim());
  const staff = asStaff(request, body);
  const draftOnly = (['currency', 'shippingAddress', 'billingAddress', 'shippingOptionId'] as const).find(
    (field) => body[field] !== undefined,
  );
  if (!body.lines && draftOnly) throw invalidBody(`/${draftOnly}`, 'is only taken with lines');
  if (body.lines) {
    if (!staff)
      throw new AppError(
        'FORBIDDEN',
        'only staff place orders from explicit lines; shoppers check out their cart',
      );
    if (body.cartId) throw invalidBody('/lines', 'give either cartId or lines, not both');
    if (!body.currency) throw invalidBody('/currency', 'is required with lines');
    // null is no address either (the draft cart would refuse its shipping option, or checkout it).
    if (body.shippingAddress === undefined || body.shippingAddress === null)
      throw invalidBody('/shippingAddress', 'is required with lines');
    // No customer is attached, so there is no address book to copy from (the cart would answer a
    // signed-in staff user 401).
    for (const field of ['shippingAddress', 'billingAddress'] as const) {
      const value = body[field];
      if (typeof value === 'object' && value !== null && 'addressId' in value)
        throw invalidBody(`/${field}/addressId`, 'is not taken with lines: give the address inline');
    }
    const cart = await deps.cart.draftCart(tenantId, {
      currency: body.currency,
      lines: body.lines,
      shippingAddress: body.shippingAddress,
      billingAddress: body.billingAddress,
      shippingOptionId: body.shippingOptionId,
    });
    return { cart, guestTokenHash: null };
  }
  if (staff) {
    if (!body.cartId) throw invalidBody('/cartId', 'is required: staff name the cart to check out');
    const cart = isUuid(body.cartId) ? await deps.cart.getCart(tenantId, body.cartId, trx) : undefined;
    if (!cart) throw notFound();
    return { cart, guestTokenHash: null };
  }
  const { cart, guestTokenHash } = await deps.cart.shopperCart(tenantId, request, trx);
  if (!cart || (body.cartId && body.cartId.toLowerCase() !== cart.id)) throw notFound();
  return { cart, guestTokenHash };
}

const invalidBody = (pointer: string, message: string) =>
  new AppError('VALIDATION_FAILED', `${pointer.slice(1)} ${message}`, {
    errors: [{ in: 'body', pointer, message }],
  });

/** Refuses a cart that cannot become an order as it is, before any order exists (the shopper fixes it). */
function checkCart(cart: Cart): void {
  if (cart.lines.length === 0 || !cart.currency) throw new AppError('CHECKOUT_INVALID', 'the cart is empty');
  // Stock is the reserve step's to judge (it may come back, or go, before then): such an order
  // fails as out of stock, with its rejected event, rather than never existing.
  const problems = cart.lines
    .filter((l) => (l.problem && l.problem.code !== 'INSUFFICIENT_STOCK') || l.priceChanged)
    .map((l) => ({
      lineId: l.id,
      variantId: l.variantId,
      problem: l.problem?.code ?? 'PRICE_CHANGED',
      detail: l.problem?.detail ?? `the price changed from ${l.priceChanged!.from} to ${l.priceChanged!.to}`,
    }));
  if (problems.length > 0) {
    throw new AppError('CHECKOUT_INVALID', 'some lines of the cart need the shopper’s attention', {
      lines: problems,
    });
  }
  if (!cart.shippingAddress) throw new AppError('CHECKOUT_INVALID', 'the cart needs a shipping address');
  // A payment takes a positive amount: a free cart's order could only fail at its authorization.
  if (cart.totals.total <= 0)
    throw new AppError('CHECKOUT_INVALID', 'the cart has nothing to pay: its total is 0');
}

function newOrderOf(
  cart: Cart,
  body: PlaceOrderBody,
  customerId: string | null,
  idempotency: { scope: string; key: string; hash: string },
  guestTokenHash: string | null,
  meta: EventMeta,
): NewOrder {
  return {
    customerId,
    email: body.email ?? null,
    currency: cart.currency!,
    lines: cart.lines.map((l) => ({
      variantId: l.variantId,
      productId: l.productId,
      sku: l.sku,
      title: l.productTitle,
      variantTitle: l.variantTitle,
      quantity: l.quantity,
      unitPrice: l.unitPrice,
      tax: l.tax,
      lineTotal: l.total,
    })),
    shippingAddress: cart.shippingAddress,
    billingAddress: cart.billingAddress ?? cart.shippingAddress,
    shippingOption: cart.shippingOption,
    totals: {
      subtotal: cart.totals.subtotal,
      discount: cart.totals.discount,
      shipping: cart.totals.shipping,
      tax: cart.totals.tax,
      total: cart.totals.total,
      taxRateBps: cart.totals.taxRateBps,
      pricesIncludeTax: cart.totals.pricesIncludeTax,
    },
    cartId: cart.id,
    idempotencyScope: idempotency.scope,
    idempotencyKey: idempotency.key,
    requestHash: idempotency.hash,
    correlationId: meta.correlationId ?? null,
    guestTokenHash,
  };
}

/**
 * Creates the order from the cart with its saga and the saga's first watchdog, in one
 * transaction; the same Idempotency-Key and body again finds that order (another body is 409).
 */
export async function placeOrder(
  deps: CheckoutDeps,
  tenantId: string,
  request: FastifyRequest,
  body: PlaceOrderBody,
  key: string,
  meta: EventMeta,
  runner: Pick<SagaRunner, 'leaseMs' | 'beginIn'>,
): Promise<Placed> {
  const fingerprint = requestFingerprint(body);
  const hash = fingerprint.hash;
  const findEarlier = async (trx: CheckoutTrx, scope: string): Promise<Placed | undefined> => {
    const found = await deps.orders.findByIdempotencyKey(trx, tenantId, scope, key);
    if (!found) return undefined;
    if (!fingerprint.matches(found.requestHash)) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different order');
    }
    const { requestHash: _hash, ...order } = found;
    const saga = await trx
      .selectFrom('checkout.sagas')
      .select('id')
      .where('order_id', '=', order.id)
      .executeTakeFirst();
    return { order, sagaId: saga?.id, replayed: true };
  };
  const replay = (scope: string) =>
    withTenant(deps.db, tenantId, (trx) => findEarlier(trx as CheckoutTrx, scope));
  // Staff orders from lines are looked up before their draft cart is made (in a transaction of
  // its own): a retry makes no second draft.
  let drafted: { cart: Cart; guestTokenHash: string | null } | undefined;
  const scope = idempotencyScopeOf(deps, request, body);
  if (body.lines) {
    const before = await replay(scope);
    if (before) return before;
    drafted = await cartToCheckOut(deps, tenantId, request, body);
  }
  // Taken outside the transaction, which would otherwise hold the tenant's counter row to its end:
  // on PostgreSQL on another connection while the transaction begins and reads the cart; PGlite's
  // one session must answer it first.
  const numbered = deps.orders.takeNumber(tenantId);
  numbered.catch(() => {}); // awaited where the order is made
  if (deps.ctx.db.kind === 'pglite') await numbered;
  for (let attempt = 1; ; attempt += 1) {
    try {
      // One transaction: the order of the key if there is one; else the cart read (and locked), the
      // order, its saga and the steps that need no call out.
      return await withTenant(deps.db, tenantId, async (anyTrx) => {
        const trx = anyTrx as CheckoutTrx;
        // The order of the key is looked for and the cart read with it (one round trip): a
        // replay's cart is read for nothing, or its lock refused (then the retry below finds it).
        const [earlier, read] = drafted
          ? [undefined, { status: 'fulfilled' as const, value: drafted }]
          : await Promise.allSettled([
              findEarlier(trx, scope),
              cartToCheckOut(deps, tenantId, request, body, trx),
            ]).then(([found, read]) => {
              if (found.status === 'fulfilled') return [found.value, read] as const;
              // The cart's refused lock aborts the transaction under the lookup's later statements.
              throw causeOf(read.status === 'rejected' ? [found.reason, read.reason] : [found.reason]);
            });
        if (earlier) {
          // The cart's refused lock aborted the transaction: COMMIT would roll back and fail. The
          // lookup only read, so the transaction ends in ROLLBACK and the order goes out of it.
          if (read.status === 'rejected') throw new FoundEarlier(earlier);
          return earlier;
        }
        if (read.status === 'rejected') throw read.reason;
        const { cart, guestTokenHash } = read.value;
        const idempotency = { scope, key, hash };
        checkCart(cart);
        const principal = request.principal;
        const customerId =
          principal?.kind === 'user' && principal.role === 'customer' ? principal.userId : cart.customerId;
        const provider = body.payment.provider ?? 'test';
        // The order's insert and its saga's go out together (the saga names the order's id).
        const orderId = uuidv7();
        const created = deps.orders.create(
          trx,
          tenantId,
          { ...newOrderOf(cart, body, customerId, idempotency, guestTokenHash, meta), id: orderId },
          meta,
          await numbered,
        );
        // What the order takes out of its cart once completed (not a replay's read: it records
        // nothing), written with the order's insert.
        const recorded = deps.cart.recordCheckout(trx, tenantId, cart, orderId);
        recorded.catch(() => {}); // awaited below
        // The cart was checked against the catalog moments ago in this request (checkCart): that is
        // the validate step, logged here rather than read again.
        const held = await startSaga(
          deps,
          runner,
          trx,
          tenantId,
          {
            order: created,
            orderId,
            cartId: cart.id,
            payment: { provider, token: body.payment.token },
            validated: { checkedBy: 'cart', cartId: cart.id },
          },
          meta,
        );
        await recorded;
        return { order: held.order, sagaId: held.saga.id, replayed: false, held };
      });
    } catch (error) {
      if (error instanceof FoundEarlier) return error.placed;
      if (!isUniqueViolation(error) && !isCartLocked(error)) throw error;
      // The same key placed meanwhile (another process), or the cart's checkout is already
      // running, or the cart is held for a moment (an edit, a read, that checkout's own step), or
      // a stock item the reservation locked without waiting (inventory/reservation-batch.ts).
      const again = await replay(scope);
      if (again) return again;
      if (!isCartLocked(error) || attempt >= CART_BUSY_ATTEMPTS) break;
      await sleep(CART_BUSY_PAUSE_MS);
    }
  }
  throw new AppError('CONFLICT', 'this cart is already being checked out', { retryAfterSeconds: 1 });
}
