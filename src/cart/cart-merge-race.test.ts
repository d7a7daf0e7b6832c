import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressBook } from '../identity/index.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import { mergeGuestCart } from './cart-merge.ts';
import { createCartService } from './cart-service.ts';
import {
  addItem,
  type CartBody,
  type CartTestApp,
  createSellable,
  createShop,
  newCustomer,
  newGuestCart,
  type Shop,
  send,
  startCartApp,
} from './cart-test-fixtures.ts';
import { hashCartToken } from './cart-token.ts';
import type { CartDeps } from './deps.ts';
import type { CartDb } from './tables.ts';

let t: CartTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCartApp();
  shop = await createShop(t, 'mergerace');
});
afterAll(() => t.close());

describe('a merge racing the guest', () => {
  it('moves a line the guest added between its catalog lookup and its locks, on every try', async () => {
    const variants = await Promise.all(
      [1, 2, 3, 4].map(() => createSellable(t, shop, { prices: { EUR: 100 } })),
    );
    const guest = await newGuestCart(t, shop);
    await addItem(t, guest.headers, { variantId: variants[0]!.id, quantity: 1 });
    const customer = await newCustomer(t, shop);
    const created = await send(t.app, 'POST', '/api/v1/cart', customer, {});
    const customerId = created.json<{ cart: CartBody }>().cart.customerId!;

    // The cart module's own service and dependencies (real database, catalog and inventory); the
    // guest adds the next variant right after each catalog lookup of the merge, so every try
    // finds a guest line the lookup did not see.
    const deps = {
      ctx: t.ctx,
      db: t.ctx.db.kysely as CartDb,
      catalog: t.catalog,
      inventory: t.inventory,
      events: undefined as unknown as EventBus,
      resolveTenant: undefined as unknown as TenantResolver,
      addresses: undefined as unknown as AddressBook,
    } satisfies CartDeps;
    const service = createCartService(deps);
    const added = variants.slice(1);
    const racing: typeof service = {
      ...service,
      async snapshotOf(...args) {
        const looked = await service.snapshotOf(...args);
        const next = args[3] === undefined ? added.shift() : undefined;
        if (next) await addItem(t, guest.headers, { variantId: next.id, quantity: 1 });
        return looked;
      },
    };

    const merged = await mergeGuestCart(deps, racing, shop.id, customerId, hashCartToken(guest.token));
    expect(added).toEqual([]);
    expect(merged.adjustments).toEqual([]);
    expect(merged.cart.lines.map((l) => l.variantId).sort()).toEqual(variants.map((v) => v.id).sort());
  });
});
