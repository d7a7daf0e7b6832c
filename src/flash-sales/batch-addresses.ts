import type { Address } from '../identity/index.ts';
import type { Candidate } from './admission-committer.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesTrx } from './tables.ts';

/** Which address an attempt asks for: its customer's named one, or their default (''). */
export const addressKey = (c: Candidate) => `${c.customerId}|${c.shippingAddressId?.toLowerCase() ?? ''}`;

/**
 * The shipping address of every attempt of the batch, by addressKey. The address book answers one
 * address per customer, so a customer's attempts naming different addresses (or one another's,
 * or none) go in rounds, each asking for one address per customer: one statement unless a
 * customer named several. In one lookup the customer's last attempt's address was every one's,
 * and an address of someone else passed when the customer's other attempt had a good one.
 */
export async function shippingAddresses(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  candidates: Candidate[],
): Promise<Map<string, Address>> {
  const rounds: Map<string, Candidate>[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    const key = addressKey(c);
    if (seen.has(key)) continue;
    seen.add(key);
    let round = rounds.find((r) => !r.has(c.customerId));
    if (!round) {
      round = new Map();
      rounds.push(round);
    }
    round.set(c.customerId, c);
  }
  const found = await Promise.all(
    rounds.map(async (round) => {
      const asked = [...round.values()];
      const byCustomer = await deps.addresses.shippingAddresses(
        trx,
        asked.map((c) => ({ userId: c.customerId, addressId: c.shippingAddressId })),
      );
      return asked.flatMap((c) => {
        const address = byCustomer.get(c.customerId);
        return address ? [[addressKey(c), address] as const] : [];
      });
    }),
  );
  return new Map(found.flat());
}
