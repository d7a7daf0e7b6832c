/**
 * Every permission a route checks, the one list of them: an API key is granted some of these, or
 * `resource:*` for every permission of a resource. Routes name theirs as a `Permission`, so a
 * check of a permission missing here does not compile.
 */
export const PERMISSIONS = [
  'exceptions:read',
  'exceptions:write',
  'flash-sales:read',
  'flash-sales:write',
  'inventory:read',
  'inventory:write',
  'orders:read',
  'orders:write',
  'payments:read',
  'payments:write',
  'products:read',
  'products:write',
  'shipping:write',
  'taxes:write',
  'users:read',
  'wal:write',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

const resourceOf = (permission: string) => permission.slice(0, permission.indexOf(':'));
const RESOURCES = new Set(PERMISSIONS.map(resourceOf));

/** Whether permissions granted to a key allow `needed`: named, or through its resource's `*`. */
export function grants(granted: readonly string[], needed: Permission): boolean {
  return granted.includes(needed) || granted.includes(`${resourceOf(needed)}:*`);
}

/** Whether a key may be granted the permission: one of PERMISSIONS, or `resource:*` of one of their resources. */
export function isGrantable(permission: string): boolean {
  if ((PERMISSIONS as readonly string[]).includes(permission)) return true;
  return permission.endsWith(':*') && RESOURCES.has(resourceOf(permission));
}
