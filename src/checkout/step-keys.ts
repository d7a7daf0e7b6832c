/** The reservation and payment keys of an order's saga: the same on every attempt and process. */
export const reservationKey = (orderId: string) => `order-${orderId}`;
export const paymentKey = (orderId: string) => `order-${orderId}`;
