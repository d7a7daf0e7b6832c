import { describe, expect, it } from 'vitest';
import { until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { freshGate, GATES } from './flash-test-fixtures.ts';
import { MAX_NOTICED } from './sold-out-memory.ts';

// The sold-out memory counts the notices it hears per campaign (a change of the gate's state: a
// sale's end, cancel or change drops it; a give-back), to tell whether one arrived while an
// attempt was in flight. It counted every campaign it ever heard of for the life of the process,
// and every process hears every campaign's: a store creating and cancelling sales in a loop grew
// every process by an entry each, without end.

describe.each(GATES)('the sold-out memory, $gate', ({ redis }) => {
  it('counts the notices of a bounded number of campaigns, however many sales come and go, and still remembers a sale sold out', async () => {
    const gate = await freshGate(redis);
    try {
      // Sales ended, cancelled or changed, each dropping its gate state.
      for (let i = 0; i < MAX_NOTICED + 2000; i++) await gate.drop(uuidv7());
      expect(gate.noticed()).toBeLessThanOrEqual(MAX_NOTICED);

      // A sale sold out is still remembered (answered with no round trip), and its buyer's
      // retry still finds its order.
      const sale = uuidv7();
      const customer = uuidv7();
      const order = uuidv7();
      await gate.load(
        sale,
        { remaining: 0, perCustomer: [[customer, 1]], keys: [[`${customer}:k1`, order]] },
        600,
      );
      const ask = (customerId: string, key: string) =>
        gate.admit({ campaignId: sale, customerId, key, orderId: uuidv7(), quantity: 1, limit: 1 });
      await until(async () => {
        expect(await ask(uuidv7(), 'k')).toMatchObject({ outcome: 'sold_out', remaining: 0 });
        return gate.remembersSoldOut(sale);
      }, 'the sale remembered sold out');
      expect(await ask(customer, 'k1')).toEqual({ outcome: 'duplicate', orderId: order });
      expect(await ask(customer, 'k2')).toEqual({ outcome: 'limit_reached' });
      await gate.drop(sale);
    } finally {
      await gate.close();
    }
  }, 120_000);
});
