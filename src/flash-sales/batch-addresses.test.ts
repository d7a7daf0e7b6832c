import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { requestFingerprint } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { type Committed, createAdmissionCommitter } from './admission-committer.ts';
import { createBreakers } from './breakers.ts';
import {
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-batch-addresses');
});
afterAll(() => t?.close());

/** A shipping address of the customer's own, through the API; answers its id. */
async function addAddress(headers: Record<string, string>, line1: string): Promise<string> {
  const made = await send(t.app, 'POST', '/api/v1/users/addresses', headers, {
    type: 'SHIPPING',
    recipient: 'Erika Muster',
    line1,
    city: 'Berlin',
    postalCode: '10117',
    country: 'DE',
  });
  expect(made.statusCode, made.body).toBe(201);
  return made.json<{ id: string }>().id;
}

describe('one customer’s attempts in one admission batch', () => {
  it('ships each to the address it named, and refuses one naming another customer’s address', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 5, perCustomerLimit: 3 });
    const [buyer, other, neighbour] = await bulkCustomers(t, shop, 3);
    const office = await addAddress(buyer!.headers, 'Friedrichstraße 43');
    const neighbours = await addAddress(neighbour!.headers, 'Kurfürstendamm 21');
    const deps = flashDeps(t);
    const committer = createAdmissionCommitter(deps, createBreakers(), pino({ level: 'silent' }), () => {});
    const candidate = (customerId: string, shippingAddressId?: string) => ({
      tenantId: shop.id,
      campaignId: sale.id,
      customerId,
      key: uuidv7(),
      request: requestFingerprint(uuidv7()),
      orderId: uuidv7(),
      quantity: 1,
      payment: undefined,
      shippingAddressId,
      meta: {},
    });
    // The first goes out alone; the other three wait for it and share the next transaction.
    const answers = await Promise.all([
      committer.submit(candidate(other!.id)),
      committer.submit(candidate(buyer!.id, office)),
      committer.submit(candidate(buyer!.id)),
      committer.submit(candidate(buyer!.id, neighbours)),
    ]);
    await committer.close();
    const shippedTo = async (answer: Committed) => {
      expect(answer.outcome).toBe('admitted');
      if (answer.outcome !== 'admitted') return undefined;
      return (await orderOf(t, shop, answer.admission.orderId)).shippingAddress?.line1;
    };
    expect(await shippedTo(answers[1]!)).toBe('Friedrichstraße 43');
    expect(await shippedTo(answers[2]!)).toBe('Unter den Linden 1');
    expect(answers[3]).toMatchObject({ outcome: 'refused', error: { code: 'CHECKOUT_INVALID' } });
  });
});
