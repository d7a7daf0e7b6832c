import { describe, expect, it } from 'vitest';
import type { Principal } from '../../platform/http/index.ts';
import { canWriteNamespace } from './access.ts';

const principal = (permissions: string[]): Principal => ({
  kind: 'apiKey',
  tenantId: '00000000-0000-7000-8000-000000000001',
  tenantSlug: 'shop',
  apiKeyId: '00000000-0000-7000-8000-000000000002',
  permissions,
  namespaces: ['orders'],
});

describe('WAL write permission', () => {
  it('lets a key granted wal:* write to the namespaces it names, and only those', () => {
    expect(canWriteNamespace(principal(['wal:*']), 'orders')).toBe(true);
    expect(canWriteNamespace(principal(['wal:*']), 'payments')).toBe(false);
  });

  it('grants nothing to another resource’s wildcard', () => {
    expect(canWriteNamespace(principal(['users:*']), 'orders')).toBe(false);
  });
});
