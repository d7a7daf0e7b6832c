import type { Kysely, Transaction } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';
import type { IdentityDb } from '../users/index.ts';
import { type CheckedAddress, checkAddress } from './address-rules.ts';
import { type Address, getAddress, shippingAddressesOf } from './address-store.ts';

/** What other modules (the cart) may do with users' address books. */
export type AddressBook = {
  /** One of the user's addresses, or undefined when it is not theirs (or not in the tenant). Opens its own transaction. */
  find(tenantId: string, userId: string, addressId: string): Promise<Address | undefined>;
  /**
   * In the caller's transaction of the tenant, one statement: each user's named shipping address
   * (when it is theirs) or their default one; users with neither are absent.
   */
  shippingAddresses(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    wanted: { userId: string; addressId?: string | undefined }[],
  ): Promise<Map<string, Address>>;
  /**
   * The address book's own check of an address's country, postal code and region: canonical
   * forms (the region of US, CA and AU as its code, required there) and failing fields (pointers
   * /country, /postalCode, /region). A postal code or region passed as undefined is not checked.
   */
  checkAddress(country: unknown, postalCode: unknown, region?: unknown): CheckedAddress;
};

/** The AddressBook over identity's tables. */
export function createAddressBook(db: Kysely<IdentityTables>): AddressBook {
  return {
    async find(tenantId, userId, addressId) {
      try {
        return await withTenant(db, tenantId, (trx) => getAddress(trx, { tenantId, userId }, addressId));
      } catch (error) {
        if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
        throw error;
      }
    },
    shippingAddresses: (trx, wanted) => shippingAddressesOf(trx as IdentityDb, wanted),
    checkAddress,
  };
}
