import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { addUser, bearer, send } from '../identity/users/user-test-fixtures.ts';
import { MAX_STREAMS_PER_STORE } from './campaign-routes.ts';
import { createSale, type FlashTestApp, saleVariant, startFlashApp } from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-stats-stream');
});
afterAll(() => t?.close());

describe('the stats stream', () => {
  it('carries the CORS and security headers every answer carries (the hijacked stream sent none)', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2 });
    // Cancelled: the stream sends one event and ends.
    expect((await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff)).statusCode).toBe(
      200,
    );
    const origin = 'https://console.example.com';
    const stats = await t.app.inject({
      method: 'GET',
      url: `/api/v1/flash-sales/${sale.id}/stats`,
      headers: { ...shop.staff, origin },
    });
    const stream = await t.app.inject({
      method: 'GET',
      url: `/api/v1/flash-sales/${sale.id}/stats/stream`,
      headers: { ...shop.staff, origin },
    });
    expect(stream.statusCode).toBe(200);
    expect(stream.headers['content-type']).toBe('text/event-stream');
    expect(stream.body).toMatch(/^event: stats\n/);
    for (const name of ['access-control-allow-origin', 'x-content-type-options', 'content-security-policy']) {
      expect(stats.headers[name], name).toBeDefined();
      expect([name, stream.headers[name]]).toEqual([name, stats.headers[name]]);
    }
  });

  it('ends for a watcher whose account is disabled meanwhile, as their next request would be refused', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const watcher = await addUser(t, shop.id, `watcher-${sale.id}@fs-stats-stream.test`, 'staff');
    const headers = await bearer(t, shop.slug, watcher.email);
    // The sale is live for an hour: the stream would go on for its ten minutes.
    const streaming = t.app.inject({
      method: 'GET',
      url: `/api/v1/flash-sales/${sale.id}/stats/stream`,
      headers,
    });
    const admin = await bearer(t, shop.slug, shop.adminEmail);
    const disabled = await send(t.app, 'PUT', `/api/v1/users/${watcher.id}/status`, admin, {
      status: 'disabled',
    });
    expect(disabled.statusCode, disabled.body).toBe(200);
    const stream = await streaming;
    expect(stream.statusCode).toBe(200);
    expect(stream.body).toMatch(/^event: stats\n/);
  }, 30_000);

  it('holds at most MAX_STREAMS_PER_STORE streams of a store at once (each reads the database every second for ten minutes): one more is 429 RATE_LIMITED', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const url = `/api/v1/flash-sales/${sale.id}/stats/stream`;
    // The sale is live for an hour: each stream would go on for its ten minutes.
    const open = Array.from({ length: MAX_STREAMS_PER_STORE }, () =>
      t.app.inject({ method: 'GET', url, headers: shop.staff }),
    );
    await sleep(1500); // every one of them has sent its first event
    const more = t.app.inject({ method: 'GET', url, headers: shop.staff });
    // Cancelled: every stream sends its last event and ends.
    await sleep(200);
    expect((await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff)).statusCode).toBe(
      200,
    );
    const refused = await more;
    expect(refused.statusCode, refused.body.slice(0, 200)).toBe(429);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.json().code).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBeDefined();
    for (const stream of await Promise.all(open)) expect(stream.statusCode).toBe(200);
    // The streams that ended free their places.
    const again = await t.app.inject({ method: 'GET', url, headers: shop.staff });
    expect(again.statusCode).toBe(200);
  }, 30_000);
});
