export { tenantRoutes } from './tenant-routes.ts';
export {
  createTenant,
  findTenantById,
  findTenantBySlug,
  type NewTenant,
  type Tenant,
  type TenantStatus,
} from './tenant-store.ts';
