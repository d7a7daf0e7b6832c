import type { Namespace } from '../namespaces/namespace.ts';
import type { Delivery } from './target-result.ts';

/** A namespace for target tests; override what a test cares about. */
export function testNamespace(overrides: Partial<Namespace> = {}): Namespace {
  return {
    tenantId: '00000000-0000-7000-8000-000000000001',
    name: 'orders',
    backend: 'postgres',
    fallbackBackend: null,
    drainingBackends: [],
    payloadSchema: null,
    retry: { strategy: 'exponential', baseDelayMs: 1000, maxDelayMs: 60_000, maxAttempts: 5, jitter: 0.2 },
    targets: [],
    rateLimitPerSecond: null,
    maxDelayMs: 86_400_000,
    maxPayloadBytes: 262_144,
    deliveredRetentionSeconds: 86_400,
    deadRetentionSeconds: 604_800,
    allowedHosts: [],
    consumerConcurrency: 4,
    enabled: true,
    system: false,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

/** A delivery for target tests. */
export function testDelivery(overrides: Partial<Delivery> = {}): Delivery {
  return {
    deliveryId: '01900000-0000-7000-8000-00000000d001',
    messageId: 'msg_2f9c1',
    tenantId: '00000000-0000-7000-8000-000000000001',
    namespace: 'orders',
    key: 'order-42',
    payload: { orderId: 'ord_42', total: 1999, currency: 'EUR' },
    headers: {},
    attempt: 1,
    createdAt: new Date('2026-11-22T03:00:00.000Z'),
    ...overrides,
  };
}
