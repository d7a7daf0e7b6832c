import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { newSecret, type Receiver, startReceiver } from '../wal/e2e/receiver.ts';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
  until,
} from './catalog-test-fixtures.ts';
import type { Product } from './products/product-read.ts';

// A tenant subscribes to its product events with a webhook: an HTTP target with a types filter
// on its product-events system namespace. The test receiver is on 127.0.0.1, which the operator
// opens with MERCATO_WAL_PRIVATE_TARGETS.
describe('product webhooks', () => {
  let t: CatalogTestApp;
  let shop: Shop;
  let receiver: Receiver;
  const secret = newSecret();

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startCatalogApp({ MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${new URL(receiver.url).port}` });
    shop = await createShop(t, 'hooked');
    const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const put = await send(t.app, 'PUT', '/api/v1/wal/namespaces/product-events', admin, {
      targets: [
        {
          name: 'shop-hook',
          type: 'http',
          url: receiver.url,
          secret,
          timeoutMs: 2000,
          types: ['mercato.product.*'],
        },
      ],
      retry: { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50 },
    });
    expect(put.statusCode, put.body).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  /** Whether every message of the namespace about subject has been delivered (or given up). */
  const settled = (subject: string) =>
    withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const { rows } = await sql<{ state: string }>`
        select state from wal.messages
        where namespace = 'product-events' and headers->>'ce-subject' = ${subject}`.execute(trx);
      return rows.length > 0 && rows.every((r) => r.state === 'delivered' || r.state === 'dead');
    });

  it('receives exactly the product events, signed, with the product as data; category events are filtered out', async () => {
    const created = await createProduct(t, shop);
    const updated = (
      await send(t.app, 'PUT', `/api/v1/products/${created.id}`, shop.staff, {
        title: 'Hooked Tee',
        status: 'active',
      })
    ).json<Product>();
    const category = (await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: 'Hooks' })).json<{
      id: string;
    }>();
    await send(t.app, 'PUT', `/api/v1/categories/${category.id}`, shop.staff, { name: 'Hooks Renamed' });
    await send(t.app, 'DELETE', `/api/v1/categories/${category.id}`, shop.staff);
    expect((await send(t.app, 'DELETE', `/api/v1/products/${created.id}`, shop.staff)).statusCode).toBe(204);

    await until(() => receiver.received.length >= 3, 'three product webhooks');
    await until(() => settled(category.id), 'the category events to be delivered (to no one)');
    await until(() => settled(created.id), 'the product events to be delivered');
    const got = [...receiver.received].sort((a, b) => (a.event.id < b.event.id ? -1 : 1));
    expect(got.map((r) => [r.event['type'], r.event['subject']])).toEqual([
      ['mercato.product.created', created.id],
      ['mercato.product.updated', created.id],
      ['mercato.product.deleted', created.id],
    ]);
    expect(got.map((r) => r.event.data)).toEqual([created, updated, updated]);
    for (const r of got) {
      expect(r.event).toMatchObject({
        specversion: '1.0',
        source: '/mercato/product-events',
        tenantid: shop.id,
      });
      const headers = {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      };
      expect(new Webhook(secret).verify(r.body, headers)).toMatchObject({ id: r.event.id });
      expect(() => new Webhook(newSecret()).verify(r.body, headers)).toThrow();
    }
  });
});
