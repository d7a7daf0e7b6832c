import { orderPaymentKey } from '../payments/index.ts';

/** The reservation and payment keys of an order's saga: the same on every attempt and process. */
export const reservationKey = (orderId: string) => `order-${orderId}`;
/** The payments module's key for an order's checkout payment, which no staff payment may take. */
export const paymentKey = orderPaymentKey;
