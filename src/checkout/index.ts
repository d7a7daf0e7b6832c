export type { CheckoutModuleDeps } from './deps.ts';
export { type CheckoutModule, createCheckout } from './module.ts';
export type { Saga, SagaStep } from './saga-store.ts';
