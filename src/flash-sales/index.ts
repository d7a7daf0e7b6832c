export type { FlashSalesModuleDeps } from './deps.ts';
export { createFlashSales, type FlashSalesModule } from './module.ts';
export type { Reconciliation, Repair } from './reconcile.ts';
