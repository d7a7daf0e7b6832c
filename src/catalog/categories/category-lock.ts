import { lockNamed } from '../../platform/db/index.ts';
import type { CatalogTrx } from '../tables.ts';

/**
 * Takes the tenant's category write lock for the rest of trx: category writes, and the search
 * rebuilds that read breadcrumbs (the reindex, a category's subtree rebuilt in batches), one at a
 * time, so none rebuilds breadcrumbs a concurrent rename is changing.
 */
export async function lockCategoryWrites(trx: CatalogTrx, tenantId: string): Promise<void> {
  await lockNamed(trx, `catalog.categories:${tenantId}`);
}
