export type { CheckoutModuleDeps } from './deps.ts';
export { type CheckoutApi, type CheckoutModule, createCheckout } from './module.ts';
export { refundSideKey } from './pool-units.ts';
export type { Held, RunResult } from './saga-runner.ts';
export type { Saga, SagaStep } from './saga-store.ts';
export type { SagaStart } from './start-saga.ts';
