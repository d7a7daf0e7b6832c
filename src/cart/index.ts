export { purgeIdleCarts } from './cart-purge.ts';
export { AddressView as CartAddressView } from './cart-schemas.ts';
export type { Cart, CartLine } from './cart-view.ts';
export type { CartModuleDeps } from './deps.ts';
export { type CartModule, createCart } from './module.ts';
export type { CartAddress } from './tables.ts';
export { computeTotals, type Totals, type TotalsInput } from './totals.ts';
