export { accountFieldProblems, DISPLAY_NAME, EMAIL, SLUG } from './account-fields.ts';
export {
  type Address,
  type AddressBook,
  type CheckedAddress,
  createAddressBook,
  REGIONS,
  regionCode,
} from './addresses/index.ts';
export { createIdentity, type IdentityDeps, type IdentityModule } from './module.ts';
export { hashPassword } from './passwords.ts';
export type { TenantCreatedHook } from './tenants/index.ts';
export { signSessionTokens } from './tokens/index.ts';
