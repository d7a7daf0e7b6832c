export { createTenantResolver } from './tenant-resolver.ts';
export { tenantRoutes } from './tenant-routes.ts';
export {
  createTenantStatusCache,
  TENANT_CHANGES_CHANNEL,
  type TenantStatusCache,
} from './tenant-status-cache.ts';
export {
  createTenant,
  findTenantById,
  findTenantBySlug,
  listTenants,
  type NewTenant,
  type Tenant,
  type TenantCreatedHook,
  type TenantPatch,
  type TenantStatus,
  updateTenant,
} from './tenant-store.ts';
