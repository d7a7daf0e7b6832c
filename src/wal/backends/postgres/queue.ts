// The postgres backend's queue: leases (lease.ts, the SQL in lease-ctes.ts), fenced outcomes
// (record.ts), both in one statement (record-and-lease.ts), the next wake (next-wake.ts) and lease
// extension (extend-leases.ts). Importers take it all from here.

export { extendLeases } from './extend-leases.ts';
export { leaseBatch, leaseMessages } from './lease.ts';
export type { LeaseWindows } from './lease-ctes.ts';
export { nextWakeInMs } from './next-wake.ts';
export type * from './queue-types.ts';
export { completeMessages, failMessages } from './record.ts';
export { type CycleResult, recordAndLease } from './record-and-lease.ts';
