export { createIdentity, type IdentityDeps, type IdentityModule } from './module.ts';
export { hashPassword } from './passwords.ts';
