export * from './contract.ts';
export { createStreamBackends } from './create.ts';
export { dropStreamData } from './drop.ts';
export { type Relay, startRelay } from './relay.ts';
