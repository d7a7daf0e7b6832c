// The delivery sub-module's public surface: the postgres consumer (delivery-engine.ts), its
// internal handlers and the circuit breakers every backend shares.
export {
  CIRCUIT_GAUGE_VALUE,
  type CircuitBreakerOptions,
  type CircuitBreakers,
  type CircuitView,
  createCircuitBreakers,
  withCircuits,
} from './circuit-breakers.ts';
export type { DeadLetterEvent } from './dead-letter-events.ts';
export { createDeliveryEngine, type DeliveryEngine, type DeliveryEngineDeps } from './delivery-engine.ts';
export {
  createInternalHandlers,
  type HandlerOptions,
  type InlineRun,
  type InternalDispatch,
  type InternalHandler,
  type ManyHandler,
  PermanentDeliveryError,
} from './internal-handlers.ts';
export type { DeliverFn } from './run-targets.ts';
