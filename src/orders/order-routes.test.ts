import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { Order } from './index.ts';
import {
  createShop,
  guestToken,
  newOrder,
  newUser,
  type OrdersTestApp,
  placeOrder,
  type Shop,
  send,
  startOrdersApp,
  type TestUser,
} from './orders-test-fixtures.ts';

let t: OrdersTestApp;
let shop: Shop;
let other: Shop;
let alice: TestUser;
let bob: TestUser;
let aliceOrder: Order;
let guestOrder: Order;
let guest: { token: string; hash: string };

beforeAll(async () => {
  t = await startOrdersApp();
  shop = await createShop(t, 'ordershop');
  other = await createShop(t, 'otherorders');
  alice = await newUser(t, shop);
  bob = await newUser(t, shop);
  aliceOrder = await placeOrder(t, shop.id, newOrder({ customerId: alice.id }));
  guest = guestToken();
  guestOrder = await placeOrder(t, shop.id, newOrder({ guestTokenHash: guest.hash }));
});
afterAll(() => t.close());

const get = (url: string, headers: Record<string, string> = {}) =>
  send(t.app, 'GET', `/api/v1${url}`, headers);

/** An API key of the shop with the permissions, as its header. */
async function apiKey(s: Shop, permissions: string[]): Promise<Record<string, string>> {
  const admin = { authorization: `Bearer ${(await login(t.app, s.slug, s.adminEmail)).accessToken}` };
  const created = await send(t.app, 'POST', '/api/v1/api-keys', admin, {
    name: permissions.join() || 'none',
    permissions,
  });
  expect(created.statusCode, created.body).toBe(201);
  return { 'x-api-key': created.json<{ key: string }>().key };
}

/** Moves the order along the machine, as the saga would. */
function move(order: Order, to: Order['status'], s: Shop = shop) {
  return withTenant(t.ctx.db.kysely, s.id, (trx) =>
    t.orders.transition(trx, s.id, order.id, to, { actor: 'saga:test' }),
  );
}

describe('GET /orders/{id}', () => {
  it("shows a customer their own order with its history, and answers 404 for another customer's", async () => {
    const own = await get(`/orders/${aliceOrder.id}`, alice.headers);
    expect(own.statusCode).toBe(200);
    expect(own.json()).toEqual(aliceOrder);
    expect(own.json().history).toMatchObject([{ from: null, to: 'created' }]);
    expect(own.headers['cache-control']).toBe('private, no-store');
    const theirs = await get(`/orders/${aliceOrder.id}`, bob.headers);
    expect(theirs.statusCode).toBe(404);
    expect(theirs.headers['content-type']).toContain('application/problem+json');
    expect(theirs.json().code).toBe('NOT_FOUND');
    // A customer cannot read a guest's order either, whatever they send.
    expect((await get(`/orders/${guestOrder.id}`, bob.headers)).statusCode).toBe(404);
  });

  it('shows staff users and API keys with orders:read any order of their tenant', async () => {
    expect((await get(`/orders/${aliceOrder.id}`, shop.staff)).json().id).toBe(aliceOrder.id);
    const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    expect((await get(`/orders/${guestOrder.id}`, admin)).statusCode).toBe(200);
    const reader = await apiKey(shop, ['orders:read']);
    expect((await get(`/orders/${aliceOrder.id}`, reader)).statusCode).toBe(200);
  });

  it('shows a guest their order only with the cart token it was placed with', async () => {
    const withToken = { 'x-tenant': shop.slug, 'x-cart-token': guest.token };
    const read = await get(`/orders/${guestOrder.id}`, withToken);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual(guestOrder);
    expect((await get(`/orders/${guestOrder.id}`, { 'x-tenant': shop.slug })).statusCode).toBe(404);
    const wrong = { 'x-tenant': shop.slug, 'x-cart-token': guestToken().token };
    expect((await get(`/orders/${guestOrder.id}`, wrong)).statusCode).toBe(404);
    // The token of a guest order does not open a customer's order.
    expect((await get(`/orders/${aliceOrder.id}`, withToken)).statusCode).toBe(404);
    // A storefront API key (no orders:read) acts for guests: the token decides.
    const storefront = await apiKey(shop, ['products:read']);
    expect((await get(`/orders/${guestOrder.id}`, storefront)).statusCode).toBe(404);
    const keyWithToken = { ...storefront, 'x-cart-token': guest.token };
    expect((await get(`/orders/${guestOrder.id}`, keyWithToken)).statusCode).toBe(200);
  });

  it('needs X-Tenant from anonymous callers', async () => {
    const response = await get(`/orders/${guestOrder.id}`, { 'x-cart-token': guest.token });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('TENANT_REQUIRED');
    expect((await get(`/orders/${guestOrder.id}`, { 'x-tenant': 'no-such-shop' })).statusCode).toBe(404);
  });

  it("keeps tenants apart: another store's staff, customers and guests get 404", async () => {
    const stranger = await newUser(t, other);
    expect((await get(`/orders/${aliceOrder.id}`, other.staff)).statusCode).toBe(404);
    expect((await get(`/orders/${aliceOrder.id}/status`, other.staff)).statusCode).toBe(404);
    expect((await get(`/orders/${aliceOrder.id}`, stranger.headers)).statusCode).toBe(404);
    const elsewhere = { 'x-tenant': other.slug, 'x-cart-token': guest.token };
    expect((await get(`/orders/${guestOrder.id}`, elsewhere)).statusCode).toBe(404);
    expect((await get(`/orders/${guestOrder.id}/status`, elsewhere)).statusCode).toBe(404);
    const otherReader = await apiKey(other, ['orders:read']);
    expect((await get(`/orders/${aliceOrder.id}`, otherReader)).statusCode).toBe(404);
  });

  it('answers 404, not 400 or 500, to ids that are not UUIDs', async () => {
    for (const id of ['nope', '1001', `${aliceOrder.id}x`, `urn:uuid:${aliceOrder.id}`, '%27%3B--']) {
      for (const path of [`/orders/${id}`, `/orders/${id}/status`]) {
        const response = await get(path, shop.staff);
        expect(response.statusCode, path).toBe(404);
        expect(response.json().code, path).toBe('NOT_FOUND');
      }
      expect((await get(`/orders/user/${id}`, shop.staff)).statusCode).toBe(404);
    }
    expect((await get(`/orders/${uuidv7()}`, shop.staff)).statusCode).toBe(404);
    // Upper case is the same UUID.
    expect((await get(`/orders/${aliceOrder.id.toUpperCase()}`, alice.headers)).statusCode).toBe(200);
  });
});

describe('GET /orders/{id}/status', () => {
  it('answers where the order stands, with the access of GET /orders/{id}', async () => {
    const order = await placeOrder(t, shop.id, newOrder({ customerId: alice.id }));
    await move(order, 'inventory_reserved');
    const failed = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      t.orders.transition(trx, shop.id, order.id, 'failed', {
        actor: 'saga:test',
        paymentStatus: 'failed',
        failure: { reason: 'payment_declined', message: 'card declined' },
      }),
    );
    const status = await get(`/orders/${order.id}/status`, alice.headers);
    expect(status.statusCode).toBe(200);
    expect(status.json()).toEqual({
      id: order.id,
      number: order.number,
      name: `#${order.number}`,
      status: 'failed',
      paymentStatus: 'failed',
      failure: { reason: 'payment_declined', message: 'card declined' },
      updatedAt: failed.updatedAt,
    });
    expect((await get(`/orders/${order.id}/status`, bob.headers)).statusCode).toBe(404);
    expect((await get(`/orders/${order.id}/status`, shop.staff)).statusCode).toBe(200);
    const guestStatus = await get(`/orders/${guestOrder.id}/status`, {
      'x-tenant': shop.slug,
      'x-cart-token': guest.token,
    });
    expect(guestStatus.json()).toMatchObject({ id: guestOrder.id, status: 'created', failure: null });
    expect((await get(`/orders/${guestOrder.id}/status`, { 'x-tenant': shop.slug })).statusCode).toBe(404);
  });
});

describe('GET /orders', () => {
  it("lists a customer's own orders only, newest first", async () => {
    const customer = await newUser(t, shop);
    const mine = [];
    for (let i = 0; i < 3; i++)
      mine.push(await placeOrder(t, shop.id, newOrder({ customerId: customer.id })));
    const response = await get('/orders', customer.headers);
    expect(response.statusCode).toBe(200);
    const body = response.json<{ items: Array<{ id: string; number: number }>; nextCursor: string | null }>();
    expect(body.items.map((o) => o.id)).toEqual(mine.map((o) => o.id).reverse());
    expect(body.nextCursor).toBeNull();
    expect(body.items[0]).not.toHaveProperty('lines');
    expect(body.items[0]).toMatchObject({
      name: mine[2]!.name,
      itemCount: mine[2]!.itemCount,
      totals: mine[2]!.totals,
    });
    const own = await get(`/orders?customerId=${customer.id}`, customer.headers);
    expect(own.json().items).toHaveLength(3);
    const snooping = await get(`/orders?customerId=${alice.id}`, customer.headers);
    expect(snooping.statusCode).toBe(403);
    expect(snooping.json().code).toBe('FORBIDDEN');
  });

  it('lists every order of the tenant to staff, by pages, filtered by status, customer and creation time', async () => {
    const s = await createShop(t, 'orderlist');
    const buyer = await newUser(t, s);
    const placed = [];
    for (let i = 0; i < 5; i++)
      placed.push(await placeOrder(t, s.id, newOrder(i % 2 === 0 ? { customerId: buyer.id } : {})));
    await move(placed[1]!, 'cancelled', s);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/orders?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await get(url, s.staff)).json<{ items: { id: string }[]; nextCursor: string | null }>();
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((o) => o.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(placed.map((o) => o.id).reverse());
    const ids = async (query: string) =>
      (await get(`/orders?${query}`, s.staff)).json<{ items: { id: string }[] }>().items.map((o) => o.id);
    expect(await ids('status=cancelled')).toEqual([placed[1]!.id]);
    expect(await ids(`customerId=${buyer.id}`)).toEqual([placed[4]!.id, placed[2]!.id, placed[0]!.id]);
    expect(await ids(`customerId=${buyer.id}&status=created`)).toHaveLength(3);
    const from = encodeURIComponent(placed[0]!.createdAt);
    expect(await ids(`createdFrom=${from}`)).toHaveLength(5);
    expect(await ids(`createdTo=${from}`)).toEqual([]);
    expect(
      await ids(`createdFrom=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`),
    ).toEqual([]);
    // Another tenant's staff sees none of them.
    const theirs = (await get('/orders', other.staff))
      .json<{ items: { id: string }[] }>()
      .items.map((o) => o.id);
    expect(theirs.filter((id) => seen.includes(id))).toEqual([]);
  });

  it('needs a credential, and a user or orders:read', async () => {
    const anonymous = await get('/orders', { 'x-tenant': shop.slug });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().code).toBe('UNAUTHENTICATED');
    const storefront = await apiKey(shop, ['products:read']);
    expect((await get('/orders', storefront)).statusCode).toBe(403);
    const reader = await apiKey(shop, ['orders:read']);
    expect((await get('/orders', reader)).statusCode).toBe(200);
  });

  it('refuses bad query parameters with 400 problems naming them', async () => {
    const cases: Array<[string, string]> = [
      ['limit=0', 'VALIDATION_FAILED'],
      ['limit=101', 'VALIDATION_FAILED'],
      ['limit=ten', 'VALIDATION_FAILED'],
      ['status=shipped', 'VALIDATION_FAILED'],
      ['customerId=42', 'VALIDATION_FAILED'],
      ['createdFrom=yesterday', 'VALIDATION_FAILED'],
      ['createdTo=0000-01-01T00:00:00Z', 'VALIDATION_FAILED'],
      ['sort=oldest', 'VALIDATION_FAILED'],
      ['cursor=%21%21', 'INVALID_CURSOR'],
      [`cursor=${Buffer.from('not-an-id').toString('base64url')}`, 'INVALID_CURSOR'],
    ];
    for (const [query, code] of cases) {
      const response = await get(`/orders?${query}`, shop.staff);
      expect(response.statusCode, query).toBe(400);
      expect(response.headers['content-type'], query).toContain('application/problem+json');
      expect(response.json().code, query).toBe(code);
    }
    const userRoute = await get(`/orders/user/${alice.id}?status=nope`, shop.staff);
    expect(userRoute.statusCode).toBe(400);
    expect(userRoute.json().code).toBe('VALIDATION_FAILED');
  });
});

describe('GET /orders/user/{userId}', () => {
  it("lists that customer's orders to staff only, newest first and paged", async () => {
    const customer = await newUser(t, shop);
    const first = await placeOrder(t, shop.id, newOrder({ customerId: customer.id }));
    const second = await placeOrder(t, shop.id, newOrder({ customerId: customer.id }));
    const page = await get(`/orders/user/${customer.id}?limit=1`, shop.staff);
    expect(page.statusCode).toBe(200);
    const body = page.json<{ items: { id: string }[]; nextCursor: string }>();
    expect(body.items.map((o) => o.id)).toEqual([second.id]);
    const next = await get(`/orders/user/${customer.id}?limit=1&cursor=${body.nextCursor}`, shop.staff);
    expect(next.json().items.map((o: { id: string }) => o.id)).toEqual([first.id]);
    expect(next.json().nextCursor).toBeNull();
    const self = await get(`/orders/user/${customer.id}`, customer.headers);
    expect(self.statusCode).toBe(403);
    expect((await get(`/orders/user/${customer.id}`, {})).statusCode).toBe(401);
  });

  it("shows another store's staff nothing of this store's customers", async () => {
    const response = await get(`/orders/user/${alice.id}`, other.staff);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ items: [], nextCursor: null });
  });
});
