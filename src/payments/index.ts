export type { AuthorizationCall, AuthorizeOutcome } from './authorize.ts';
export type { CaptureCall } from './capture.ts';
export type { FindOrder, PaymentsModuleDeps } from './deps.ts';
export { createPayments, type PaymentsModule, type TestProviderControls } from './module.ts';
export { orderPaymentKey } from './order-payment-key.ts';
export type { PaymentEventVerb } from './payment-events.ts';
export {
  FAILURE_CODES,
  type FailureCode,
  PAYMENT_STATUSES,
  type PaymentStatus,
  paymentMachine,
} from './payment-machine.ts';
export type { AuthorizeRequest, PaymentsApi } from './payments-api.ts';
export type { StartedCall } from './provider-call.ts';
export type {
  AuthorizeInput,
  AuthorizeResult,
  CaptureInput,
  CaptureResult,
  DeclineCode,
  PaymentProvider,
  RefundInput,
  RefundResult,
  VoidInput,
  VoidResult,
} from './providers/provider.ts';
export { PROVIDERS } from './providers/registry.ts';
export { TEST_TOKENS } from './providers/test-psp.ts';
export type { TestPspEvent, TestPspLedger, WebhookDelivery } from './providers/test-psp-webhooks.ts';
export type { Payment, PaymentOperation } from './views.ts';
