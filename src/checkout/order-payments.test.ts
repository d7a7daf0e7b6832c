import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleVariant,
  startFlashApp,
} from '../flash-sales/flash-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import type { Payment } from '../payments/index.ts';
import {
  createStore,
  completedOrder as placeCompleted,
  placeOrder,
  product,
  readyCart,
  send,
  settled,
  until,
} from './checkout-test-fixtures.ts';

// The checkout takes an order's payment; staff payments (POST /payments) only for a completed
// order, and a cancel gives back every payment of the order that holds money.

let t: FlashTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createStore(t, 'order-payments-shop');
});
afterAll(() => t?.close());

const staff = (method: string, url: string, body?: unknown) =>
  send(t.app, method as 'GET' | 'POST', `/api/v1${url}`, shop.staff, body);
const paymentsOf = async (orderId: string) => {
  const response = await staff('GET', `/payments/order/${orderId}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ items: Payment[] }>().items;
};
const chargesOf = async (orderId: string) => {
  const keys = new Set((await paymentsOf(orderId)).map((p) => `authorize:${p.key}`));
  return (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) => keys.has(c.idempotencyKey));
};
/** A staff payment of `amount` for the order, made (201) and, unless `upTo` is 'pending', processed and captured. */
async function staffPayment(orderId: string, amount: number, upTo: 'authorized' | 'completed') {
  const made = await staff('POST', '/payments', { orderId, amount, currency: 'EUR', token: 'tok_visa' });
  expect(made.statusCode, made.body).toBe(201);
  const id = made.json<Payment>().id;
  expect((await staff('POST', `/payments/${id}/process`)).json()).toMatchObject({ status: 'authorized' });
  if (upTo === 'completed') {
    expect((await staff('POST', `/payments/${id}/complete`)).json()).toMatchObject({ status: 'completed' });
  }
  return id;
}

/** A customer's order of one unit, completed by its checkout (201), with the checkout's own payment. */
async function completedOrder() {
  const { customer, order } = await placeCompleted(t, shop);
  const [own] = await paymentsOf(order.id);
  return { customer, order, own: own! };
}

describe('staff payments of an order the checkout pays', () => {
  it('are refused (409) for a flash-sale order waiting for its payment: the customer pays it once', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2, paymentWindowMinutes: 5 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const admitted = await attempt(t, sale.id, buyer!);
    expect(admitted.statusCode, admitted.body).toBe(202);
    const orderId = admitted.json<{ orderId: string }>().orderId;
    const byPhone = await staff('POST', '/payments', { orderId, currency: 'EUR', token: 'tok_visa' });
    expect(byPhone.statusCode, byPhone.body).toBe(409);
    expect(byPhone.json()).toMatchObject({ code: 'CONFLICT', orderId, orderStatus: 'created' });
    const paid = await send(t.app, 'POST', `/api/v1/orders/${orderId}/pay`, buyer!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect(paid.statusCode, paid.body).toBe(202);
    const order = await settled(t, shop, orderId);
    expect(order).toMatchObject({ status: 'completed', paymentStatus: 'captured' });
    const charges = await chargesOf(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ capturedAmount: order.totals.total });
  });

  it('are refused (409) while the checkout waits for a pending authorization', async () => {
    const item = await product(t, shop, 3);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 1 }], customer);
    const placed = await placeOrder(t, customer, 'tok_pending');
    expect(placed.statusCode, placed.body).toBe(202);
    const orderId = placed.headers.location!.split('/').pop()!;
    const during = await staff('POST', '/payments', {
      orderId,
      amount: 100,
      currency: 'EUR',
      token: 'tok_visa',
    });
    expect(during.statusCode, during.body).toBe(409);
    expect(during.json()).toMatchObject({ code: 'CONFLICT', orderId, orderStatus: 'payment_processing' });
    expect(await paymentsOf(orderId)).toHaveLength(1);
  });
});

describe('the key the checkout pays an order under (order-<id>)', () => {
  it('is no staff payment’s key (400 naming /key), so a flash-sale order waiting for its payment is still paid by its checkout', async () => {
    // A completed order with room left for a staff payment: the key is the only thing refused.
    const { order: other, own } = await completedOrder();
    const room = await staff('POST', `/payments/${own.id}/refund`, {
      amount: 100,
      reason: 'x',
      refundKey: 'room',
    });
    expect(room.statusCode, room.body).toBe(200);
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2, paymentWindowMinutes: 5 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const admitted = await attempt(t, sale.id, buyer!);
    expect(admitted.statusCode, admitted.body).toBe(202);
    const orderId = admitted.json<{ orderId: string }>().orderId;

    // Staff take the waiting order's checkout key for a payment of another order (the other
    // order's own checkout key too, and either in capitals): refused, nothing made.
    for (const key of [`order-${orderId}`, `ORDER-${orderId.toUpperCase()}`, `order-${other.id}`]) {
      const taken = await staff('POST', '/payments', {
        orderId: other.id,
        amount: 100,
        currency: 'EUR',
        token: 'tok_visa',
        key,
      });
      expect(taken.statusCode, taken.body).toBe(400);
      expect(taken.json()).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ in: 'body', pointer: '/key' }],
      });
    }
    expect(await paymentsOf(other.id)).toHaveLength(1);
    // Keys of other shapes stay the caller's, one that starts like the checkout's too.
    const byPhone = await staff('POST', '/payments', {
      orderId: other.id,
      amount: 100,
      currency: 'EUR',
      token: 'tok_visa',
      key: `order-${orderId}-by-phone`,
    });
    expect(byPhone.statusCode, byPhone.body).toBe(201);

    // The customer pays: the checkout makes its own payment under its key, of the order's total.
    const paid = await send(t.app, 'POST', `/api/v1/orders/${orderId}/pay`, buyer!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect(paid.statusCode, paid.body).toBe(202);
    const order = await settled(t, shop, orderId);
    expect(order).toMatchObject({ status: 'completed', paymentStatus: 'captured' });
    const payments = await paymentsOf(orderId);
    expect(payments).toMatchObject([
      { key: `order-${orderId}`, orderId, amount: order.totals.total, status: 'completed' },
    ]);
    const charges = await chargesOf(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ capturedAmount: order.totals.total });
  });
});

describe('staff status changes of an order the checkout pays', () => {
  it('never move a flash-sale order waiting for its payment forward by hand: it is completed only once paid', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2, paymentWindowMinutes: 5 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const admitted = await attempt(t, sale.id, buyer!);
    expect(admitted.statusCode, admitted.body).toBe(202);
    const orderId = admitted.json<{ orderId: string }>().orderId;
    for (const status of ['inventory_reserved', 'payment_processing', 'completed']) {
      const moved = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/status`, shop.staff, { status });
      expect(moved.statusCode, moved.body).toBe(409);
      expect(moved.json()).toMatchObject({ code: 'ILLEGAL_TRANSITION', from: 'created', to: status });
    }
    const paid = await send(t.app, 'POST', `/api/v1/orders/${orderId}/pay`, buyer!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect(paid.statusCode, paid.body).toBe(202);
    expect(await settled(t, shop, orderId)).toMatchObject({ status: 'completed', paymentStatus: 'captured' });
  });
});

describe('a cancel of a completed order', () => {
  it('gives back the staff payments made for it with its own: captured ones refunded, authorized ones voided', async () => {
    const { customer, order, own } = await completedOrder();
    // Staff refund part of the checkout's payment and take it again by phone, in two payments.
    const refunded = await staff('POST', `/payments/${own.id}/refund`, {
      amount: 600,
      reason: 'paid by phone instead',
      refundKey: 'by-phone',
    });
    expect(refunded.statusCode, refunded.body).toBe(200);
    const captured = await staffPayment(order.id, 400, 'completed');
    const authorized = await staffPayment(order.id, 200, 'authorized');

    const cancelled = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, customer, {
      reason: 'changed my mind',
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json<Order>()).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    const after = new Map((await paymentsOf(order.id)).map((p) => [p.id, p]));
    expect(after.get(own.id)).toMatchObject({ status: 'refunded', refundedAmount: order.totals.total });
    expect(after.get(captured)).toMatchObject({ status: 'refunded', refundedAmount: 400 });
    expect(after.get(authorized)).toMatchObject({ status: 'voided' });
    // The PSP holds nothing of the customer's any more, each refunded once.
    const charges = await chargesOf(order.id);
    expect(charges).toHaveLength(3);
    for (const charge of charges) {
      if (charge.status === 'voided') continue;
      expect(charge.refundedAmount).toBe(charge.capturedAmount);
    }
    expect(charges.filter((c) => c.status === 'voided')).toHaveLength(1);
    // A cancelled order takes no payment.
    const late = await staff('POST', '/payments', { orderId: order.id, currency: 'EUR', token: 'tok_visa' });
    expect(late.statusCode, late.body).toBe(422);
  });

  it('refunds all of a payment even when staff already used its refund key for part of it', async () => {
    const { customer, order, own } = await completedOrder();
    // Any refundKey is the caller's to choose, the one the compensation uses included.
    const goodwill = await staff('POST', `/payments/${own.id}/refund`, {
      amount: 1,
      reason: 'goodwill',
      refundKey: `order-${order.id}-refund`,
    });
    expect(goodwill.statusCode, goodwill.body).toBe(200);
    const cancelled = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, customer, {
      reason: 'changed my mind',
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json<Order>()).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    expect((await paymentsOf(order.id))[0]).toMatchObject({
      status: 'refunded',
      refundedAmount: order.totals.total,
    });
    const [charge] = await chargesOf(order.id);
    expect(charge).toMatchObject({ capturedAmount: order.totals.total, refundedAmount: order.totals.total });
  });

  it('refuses (409) a staff payment while it is being undone, so none escapes the compensation', async () => {
    const { customer, order, own } = await completedOrder();
    const refunded = await staff('POST', `/payments/${own.id}/refund`, {
      amount: 600,
      reason: 'paid by phone instead',
      refundKey: 'partly',
    });
    expect(refunded.statusCode, refunded.body).toBe(200);
    // The PSP now refuses the rest's refund (refunded elsewhere, its books say): the compensation
    // keeps failing and the order stays completed, its saga compensating, until an operator acts.
    await sql`update test_psp.charges set refunded_amount = captured_amount
      where id = ${own.providerTransactionId}`.execute(t.ctx.db.kysely);
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, customer, { reason: 'no' });
    expect(cancel.statusCode, cancel.body).toBeLessThan(300);
    await until(async () => {
      const saga = (await staff('GET', `/orders/${order.id}/saga`)).json<{
        status: string;
        steps: { step: string; action: string; status: string }[];
      }>();
      return (
        saga.status === 'compensating' &&
        saga.steps.some((s) => s.step === 'authorize' && s.action === 'compensate' && s.status === 'failed')
      );
    }, 'the refund refused');
    const during = await staff('POST', '/payments', {
      orderId: order.id,
      amount: 600,
      currency: 'EUR',
      token: 'tok_visa',
    });
    expect(during.statusCode, during.body).toBe(409);
    expect(during.json()).toMatchObject({
      code: 'CONFLICT',
      orderId: order.id,
      checkoutStatus: 'compensating',
    });
  });
});
