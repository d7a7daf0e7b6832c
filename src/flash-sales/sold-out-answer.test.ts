import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  attempt,
  bulkCustomers,
  type Customer,
  createSale,
  type FlashTestApp,
  saleVariant,
  withFlashShop,
} from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;
withFlashShop('fs-sold-out-answer', (app, s) => {
  t = app;
  shop = s;
});

/**
 * A caller whose token claims `customer`'s claims, `sub` replaced when given, signed with a key
 * of the forger's own (its header names the server's key): verified, it is refused.
 */
async function forged(customer: Customer, sub?: string): Promise<Customer> {
  const token = customer.headers.authorization!.slice(7);
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const claims = { ...decodeJwt(token), ...(sub ? { sub } : {}) };
  const signed = await new SignJWT(claims)
    .setProtectedHeader(decodeProtectedHeader(token) as never)
    .sign(privateKey);
  return { id: claims.sub!, headers: { authorization: `Bearer ${signed}` } };
}

/** A sale of one unit, sold to `winner` under `key`. */
async function soldOutSale(winner: Customer, key: string) {
  const sale = await createSale(t, shop, await saleVariant(t, shop, 1), { units: 1 });
  expect((await attempt(t, sale.id, winner, {}, key)).statusCode).toBe(202);
  return sale;
}

/**
 * `caller`'s attempt answered before its token is verified: each try first has a customer of
 * `late` (in turn, under their rate limit) refused SOLD_OUT, verified, which has this process
 * remember the sale sold out for a second. Answers the attempt and the verified tries it took.
 */
async function answeredEarly(saleId: string, caller: Customer, key: string, late: Customer[]) {
  for (let tries = 1; ; tries++) {
    const verified = await attempt(t, saleId, late[tries % late.length]!);
    expect(verified.json().code).toBe('SOLD_OUT');
    const answer = await attempt(t, saleId, caller, {}, key);
    // Unless from memory, it went the whole way: refused as the forgery it is.
    if (answer.statusCode !== 401 || tries === 50) return { answer, verified: tries };
    await sleep(50);
  }
}

const statsOf = async (saleId: string) => {
  const response = await send(t.app, 'GET', `/api/v1/flash-sales/${saleId}/stats`, shop.staff);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ attempts: number; rejected: Record<string, number>; unverifiedSoldOut: number }>();
};

describe('a sold-out sale answered before the token is verified', () => {
  it('counts forged tokens’ answers apart: the sale’s attempts and rejections stay the customers’ own (they were inflated)', async () => {
    const [winner, ...late] = await bulkCustomers(t, shop, 11);
    const sale = await soldOutSale(winner!, `win-${uuidv7()}`);
    const before = await statsOf(sale.id);
    let verified = 0;
    for (let i = 0; i < 10; i++) {
      const tried = await answeredEarly(sale.id, await forged(late[0]!, uuidv7()), `forged-${i}`, late);
      expect([tried.answer.statusCode, tried.answer.json().code]).toEqual([409, 'SOLD_OUT']);
      verified += tried.verified;
    }
    const after = await statsOf(sale.id);
    // The customers' own attempts count as theirs (unverified too when answered from memory, as
    // some were); the forged ones only as unverified.
    const total = (s: typeof before) => s.attempts + (s.unverifiedSoldOut ?? Number.NaN);
    expect(total(after) - total(before)).toBe(verified + 10);
    expect(after.attempts - before.attempts).toBeLessThanOrEqual(verified);
    expect((after.rejected.sold_out ?? 0) - (before.rejected.sold_out ?? 0)).toBeLessThanOrEqual(verified);
  });

  it('tells a forged token nothing of another customer’s admitted key unless it names that customer and that key', async () => {
    const [winner, ...late] = await bulkCustomers(t, shop, 10);
    const key = `win-${uuidv7()}`;
    const sale = await soldOutSale(winner!, key);
    const answer = async (caller: Customer, k: string) => {
      const r = (await answeredEarly(sale.id, caller, k, late)).answer;
      return [r.statusCode, r.json().code];
    };
    // The winner's key under any other claimed customer: what a key never used gets.
    expect(await answer(await forged(late[0]!), key)).toEqual([409, 'SOLD_OUT']);
    expect(await answer(await forged(late[0]!, uuidv7()), key)).toEqual([409, 'SOLD_OUT']);
    // The winner's claimed id with any other key: the same.
    expect(await answer(await forged(winner!), `other-${uuidv7()}`)).toEqual([409, 'SOLD_OUT']);
    // The winner's own replay still finds the order.
    expect((await attempt(t, sale.id, winner!, {}, key)).statusCode).toBe(202);
  });
});
