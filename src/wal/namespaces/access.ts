import { grants, type Permission, type Principal } from '../../platform/http/index.ts';

/** The permission an API key needs to write to a WAL namespace (on top of the namespace grant). */
export const WAL_WRITE: Permission = 'wal:write';

/**
 * Whether the principal may write messages to the namespace: admin users may; an API key needs
 * `wal:write` and the namespace (or `*`) among its namespaces. Other users may not.
 */
export function canWriteNamespace(principal: Principal, namespaceName: string): boolean {
  if (principal.kind === 'user') return principal.role === 'admin';
  if (!grants(principal.permissions, WAL_WRITE)) return false;
  const namespaces = principal.namespaces ?? [];
  return namespaces.includes('*') || namespaces.includes(namespaceName);
}
