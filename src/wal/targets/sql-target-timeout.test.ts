import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLATFORM_TENANT_ID } from '../../platform/http/index.ts';
import {
  openShortTimeoutDatabase,
  type ShortTimeoutDatabase,
  testDatabaseKind,
} from '../../platform/testing/index.ts';
import { deliverSql } from './sql-target.ts';
import { testDelivery } from './test-fixtures.ts';

// The attack of issue 9: a target's `select pg_sleep(12)` held connections for as long as it
// liked. Every session now runs under MERCATO_DB_STATEMENT_TIMEOUT_MS (PGlite cannot cancel).
describe.runIf(testDatabaseKind() === 'postgres')('sql target under the statement timeout', () => {
  let database: ShortTimeoutDatabase;

  beforeAll(async () => {
    database = await openShortTimeoutDatabase(300);
  });
  afterAll(() => database?.close());

  it('cancels a statement that sleeps past the timeout: the attempt fails instead of holding the connection', async () => {
    const result = await deliverSql(
      database.db,
      { type: 'sql', name: 'sleepy', enabled: true, statement: 'select pg_sleep(30)', params: [] },
      testDelivery({ tenantId: PLATFORM_TENANT_ID }),
    );
    expect(result.outcome).not.toBe('delivered');
    expect((result as { error?: string }).error).toMatch(/statement timeout|57014/);
  });
});
