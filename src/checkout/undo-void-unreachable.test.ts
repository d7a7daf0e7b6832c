import { describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import { placeOrder, product, readyCart, until } from './checkout-test-fixtures.ts';
import { refundApp } from './refund-test-fixtures.ts';

// A checkout that fails after its capture could not reach the provider is undone by a void. A
// void that cannot reach the provider either says nothing about a capture: the undoing must not
// ask the capture again (that would charge the customer for an order being failed), only void
// once the provider answers. Over real HTTP, on each database.

// A short step deadline (the watchdog comes soon); the watchdog's retries are quick and many,
// so the failing undoing is run again until the provider answers.
const app = refundApp('undo-void-unreachable-shop', {
  MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1000',
  MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '100',
  MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '500',
  MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS: '1000',
});

describe('a failed checkout whose void cannot reach the provider', () => {
  it('is voided once the provider answers, never captured: the customer is not charged', async () => {
    const item = await product(app.t, app.shop, 3);
    const customer = await newCustomer(app.t, app.shop);
    await readyCart(app.t, app.shop, [{ variant: item, quantity: 1 }], customer);
    // Captures and voids cannot reach the provider: the checkout's capture fails every attempt,
    // so the order fails, and its authorization's void fails too.
    const captures = await app.kit.pspUnreachable('capture');
    const voids = await app.kit.pspUnreachable('void');
    try {
      const placed = await placeOrder(app.t, customer);
      const body = placed.json<{ id?: string; orderId?: string }>();
      const orderId = (body.orderId ?? body.id)!;
      expect(orderId, placed.body).toBeDefined();
      await until(async () => {
        const { failed, idle } = await app.kit.failedUndoings(orderId);
        return failed >= 3 && idle;
      }, 'the void failed a whole run');

      // Captures reach the provider again; voids still do not. The runs the watchdog starts fail
      // their void again (they learn nothing of a capture from it) and capture nothing.
      await captures();
      await until(async () => {
        const { failed, idle } = await app.kit.failedUndoings(orderId);
        return (failed >= 6 && idle) || (await app.kit.sagaOf(orderId)).status !== 'compensating';
      }, 'another run of the undoing');
      await voids();
      await until(async () => (await app.kit.orderOf(orderId)).status === 'failed', 'the order failed');

      const [payment] = await app.kit.paymentsOfOrder(orderId);
      expect(payment).toMatchObject({ status: 'voided', refundedAmount: 0 });
      expect(await app.kit.chargeOf(payment!)).toMatchObject({ capturedAmount: 0, refundedAmount: 0 });
      expect(await app.kit.orderOf(orderId)).toMatchObject({ status: 'failed', paymentStatus: 'voided' });
    } finally {
      await captures();
      await voids();
    }
  }, 60_000);
});
