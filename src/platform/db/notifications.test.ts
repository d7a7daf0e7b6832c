import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, testDatabaseKind, until } from '../testing/index.ts';
import { postgresListener } from './notifications.ts';

describe.runIf(testDatabaseKind() === 'postgres')('LISTEN on PostgreSQL when its connection drops', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('drops cached state again once it listens again, so nothing cached during the gap outlives a missed change', async () => {
    const url = t.databaseUrl!;
    const listener = postgresListener(url);
    const events: string[] = [];
    const channel = `test_drop_${process.pid}`;
    await listener.listen(
      channel,
      (payload) => events.push(`message:${payload}`),
      () => events.push('reset'),
    );
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ n: number }>(
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where query = $1`,
        [`listen ${channel}`],
      );
      expect(rows[0]!.n).toBe(1);
      // A change committed while the listener is away is notified to no one.
      await admin.query(`notify ${channel}, 'missed'`);
      let sent = 0;
      await until(
        async () => {
          sent += 1;
          await admin.query(`notify ${channel}, 'after-${sent}'`);
          return events.some((e) => e.startsWith('message:after-'));
        },
        'a notification after it listens again',
        20_000,
      );
      const firstMessage = events.findIndex((e) => e.startsWith('message:'));
      // One reset when it dropped, one when it listened again, both before anything it heard after.
      expect(events.slice(0, firstMessage)).toEqual(['reset', 'reset']);
      expect(events).not.toContain('message:missed');
    } finally {
      await admin.end();
      await listener.close();
    }
  }, 30_000);
});
