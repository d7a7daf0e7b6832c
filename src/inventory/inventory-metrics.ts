import { Counter, Histogram, type Registry } from 'prom-client';

export type InventoryMetrics = {
  /** Reservation operations by kind and outcome (ok, or the error code). */
  ops: Counter<'kind' | 'outcome'>;
  /** Operations per batch transaction: above 1 is the hot-SKU batching at work. */
  batchSize: Histogram;
};

/** The inventory's Prometheus metrics on the app's registry. */
export function createInventoryMetrics(registry: Registry): InventoryMetrics {
  const registers = [registry];
  return {
    ops: new Counter({
      name: 'mercato_inventory_reservation_ops_total',
      help: 'Reservation operations (reserve, extend, release, commit, expire) by outcome',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    batchSize: new Histogram({
      name: 'mercato_inventory_reservation_batch_size',
      help: 'Reservation operations carried by one batch transaction',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    }),
  };
}
