export type { FlashSalesModuleDeps } from './deps.ts';
export { createMemoryGate } from './gate-memory.ts';
export { createRedisGate } from './gate-redis.ts';
export { createFlashSales, type FlashSalesModule } from './module.ts';
export type { Reconciliation, Repair } from './reconcile.ts';
export { reconcileCampaign } from './reconcile.ts';
export type { FlashSalesDb } from './tables.ts';
