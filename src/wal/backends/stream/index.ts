export * from './contract.ts';
export { createStreamBackends } from './create.ts';
export { dropStreamData } from './drop.ts';
export { type DrainPruner, pruneDrainingBackend, reopenIfNamed, startDrainPruner } from './prune.ts';
export { type Relay, startRelay } from './relay.ts';
