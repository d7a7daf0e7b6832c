export { type AddressBook, createAddressBook } from './address-book.ts';
export { addressRoutes } from './address-routes.ts';
export type { CheckedAddress } from './address-rules.ts';
export { type Address, type AddressType, getAddress, listAddresses } from './address-store.ts';
export { COUNTRY_CODES, isCountryCode } from './countries.ts';
export { REGIONS, regionCode } from './regions.ts';
