import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExceptionsDb } from '../exceptions/index.ts';
import { openStoredSource, storeSealedSource } from '../exceptions/secrets-test-fixtures.ts';
import { createTestTenant, type TestTenant } from '../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { createSecretBox } from '../platform/secrets.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { Target } from '../wal/namespaces/namespace.ts';
import { openTargets } from '../wal/namespaces/sealed-targets.ts';
import { createNamespace } from '../wal/namespaces/store.ts';
import type { WalTables } from '../wal/tables.ts';
import { parseDays, progressReporter } from './exceptions-commands.ts';
import { mercato } from './mercato-process.ts';

describe('mercato exceptions purge, its pieces', () => {
  it('reads --older-than as whole days', () => {
    expect(parseDays('30d')).toBe(30);
    expect(parseDays('7')).toBe(7);
    expect(parseDays('0d')).toBe(0);
    for (const bad of ['30h', '-1d', '1.5d', 'soon', '36501d', ''])
      expect(() => parseDays(bad)).toThrow(/whole days/);
  });

  it('draws a bar in place on a terminal and a line per batch otherwise', () => {
    const sink = (isTTY: boolean) => {
      const chunks: string[] = [];
      return {
        chunks,
        out: { isTTY, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream,
      };
    };
    const tty = sink(true);
    const bar = progressReporter(tty.out);
    bar.progress(1, 4, { tenantId: 't', archived: 1, deleted: 0 });
    bar.progress(4, 4, { tenantId: 't', archived: 0, deleted: 3 });
    bar.done();
    expect(tty.chunks).toEqual([
      `\r[${'#'.repeat(8)}${'-'.repeat(22)}] 25% 1/4`,
      `\r[${'#'.repeat(30)}] 100% 4/4`,
      '\n',
    ]);
    const pipe = sink(false);
    const lines = progressReporter(pipe.out);
    lines.progress(1, 4, { tenantId: 't', archived: 1, deleted: 0 });
    lines.progress(4, 4, { tenantId: 't', archived: 0, deleted: 3 });
    lines.done();
    expect(pipe.chunks).toEqual(['tenant t: archived 1 (1/4)\n', 'tenant t: deleted 3 archived (4/4)\n']);
  });
});

// The command runs as its own process against the test app's PostgreSQL database (PGlite's data
// directory would be held by the test app; the purge itself runs on both in retention.test.ts).
describe.runIf(testDatabaseKind() === 'postgres')('mercato exceptions purge', () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await startTestApp();
    tenant = await createTestTenant(t, 'purge-cli');
  });
  afterAll(() => t.close());

  async function resolvedException(days: number, of: TestTenant = tenant): Promise<string> {
    const db = t.ctx.db.kysely as ExceptionsDb;
    const id = uuidv7();
    const at = new Date(Date.now() - days * 86_400_000);
    await withTenant(db, of.id, async (trx) => {
      await trx
        .insertInto('exceptions.groups')
        .values({
          id,
          tenant_id: of.id,
          fingerprint: id,
          exceptions: 1,
          interface_type: 'COLLECTION',
          category: 'SYSTEM_ERROR',
          normalized_reason: 'ledger down',
          severity: 'LOW',
          first_seen: at,
          last_seen: at,
        })
        .execute();
      await trx
        .insertInto('exceptions.exceptions')
        .values({
          id,
          tenant_id: of.id,
          transaction_id: `cli-${id}`,
          interface_type: 'COLLECTION',
          event_type: 'CollectionRejected',
          operation: 'collect',
          reason: 'ledger down',
          category: 'SYSTEM_ERROR',
          severity: 'LOW',
          status: 'RESOLVED',
          retryable: false,
          source_ref: JSON.stringify({ kind: 'source', interfaceType: 'COLLECTION', externalId: null }),
          group_id: id,
          updated_at: at,
        })
        .execute();
    });
    return id;
  }

  it('reports what a dry run would archive, changes nothing, then archives with a line per batch', async () => {
    const old = await resolvedException(45);
    const young = await resolvedException(10);
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false' };
    const count = () =>
      withTenant(t.ctx.db.kysely as ExceptionsDb, tenant.id, (trx) =>
        trx.selectFrom('exceptions.exceptions').select('id').where('id', 'in', [old, young]).execute(),
      );

    const dry = await mercato(
      ['exceptions', 'purge', '--older-than', '30d', '--tenant', 'purge-cli', '--dry-run'],
      env,
    );
    expect(dry.code, dry.output).toBe(0);
    expect(dry.output).toContain('tenant "purge-cli": 1 exception(s) archived');
    expect(dry.output).toContain(
      '1 exception(s) would be archived and 0 archived record(s) would be deleted (dry run',
    );
    expect(await count()).toHaveLength(2);

    const run = await mercato(['exceptions', 'purge', '--older-than', '30d', '--tenant', 'purge-cli'], env);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toContain(`tenant ${tenant.id}: archived 1 (1/1)`);
    expect(run.output).toContain('1 exception(s) were archived');
    expect((await count()).map((r) => r.id)).toEqual([young]);

    const bad = await mercato(['exceptions', 'purge', '--older-than', 'a while'], env);
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('--older-than takes whole days');
    const nobody = await mercato(['exceptions', 'purge', '--tenant', 'nobody'], env);
    expect(nobody.code).toBe(1);
    expect(nobody.output).toContain('no tenant with slug "nobody"');
  }, 120_000);

  it("purges every other tenant when one tenant's step fails, names that tenant and exits 1", async () => {
    const broken = await createTestTenant(t, 'purge-cli-broken');
    const due = await resolvedException(45);
    const stuck = await resolvedException(45, broken);
    const db = t.ctx.db.kysely;
    // The broken tenant's rows cannot be archived: its step fails for real, in PostgreSQL.
    await sql`create function public.refuse_purge() returns trigger language plpgsql
      as $$ begin raise exception 'archive refused'; end $$`.execute(db);
    await sql`create trigger refuse_purge before insert on exceptions.archive for each row
      when (new.tenant_id = ${sql.lit(broken.id)}::uuid) execute function public.refuse_purge()`.execute(db);
    try {
      const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false' };
      const run = await mercato(['exceptions', 'purge', '--older-than', '30d'], env);
      expect(run.code, run.output).toBe(1);
      expect(run.output).toContain('tenant "purge-cli": 1 exception(s) archived');
      expect(run.output).toContain(`tenant ${broken.id}: the purge failed: archive refused`);
      expect(run.output).toContain('the purge failed for 1 tenant(s)');
      const left = async (of: TestTenant, id: string) =>
        withTenant(db as ExceptionsDb, of.id, (trx) =>
          trx.selectFrom('exceptions.exceptions').select('id').where('id', '=', id).execute(),
        );
      expect(await left(tenant, due)).toHaveLength(0);
      expect(await left(broken, stuck)).toHaveLength(1);
    } finally {
      await sql`drop trigger refuse_purge on exceptions.archive`.execute(db);
      await sql`drop function public.refuse_purge()`.execute(db);
    }
  }, 120_000);
});

// As purge: its own process against the test app's PostgreSQL (resealSecrets itself runs on both
// in sources.test.ts).
describe.runIf(testDatabaseKind() === 'postgres')('mercato exceptions reseal-secrets', () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await startTestApp();
    tenant = await createTestTenant(t, 'reseal-cli');
  });
  afterAll(() => t.close());

  it('seals the sources again under the new key, then finds nothing to do, and exits 1 for a key nobody names', async () => {
    // A source saved before MERCATO_SECRETS_KEY was set: sealed under the key derived from the database.
    const secrets = { signingSecret: 'whsec_old', credentials: { token: 'tok-cli' } };
    await storeSealedSource(t.ctx, tenant.id, 'ORDER', secrets, undefined);
    const key = randomBytes(32).toString('base64');
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false', MERCATO_SECRETS_KEY: key };
    const first = await mercato(['exceptions', 'reseal-secrets'], env);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain('1 source(s) sealed again under the current key, 0 already under it');
    expect(await openStoredSource(t.ctx, tenant.id, 'ORDER', key)).toEqual({ secrets, current: true });

    const second = await mercato(['exceptions', 'reseal-secrets'], env);
    expect(second.output).toContain('0 source(s) sealed again under the current key, 1 already under it');

    const other = { ...env, MERCATO_SECRETS_KEY: randomBytes(32).toString('hex') };
    const lost = await mercato(['exceptions', 'reseal-secrets'], other);
    expect(lost.code).toBe(1);
    expect(lost.output).toContain(`tenant ${tenant.id}, ORDER: sealed under an unknown key or altered`);
    expect(lost.output).toContain('keep MERCATO_SECRETS_KEY_PREVIOUS');
    expect(lost.output).not.toContain(key);
  }, 120_000);
});

describe.runIf(testDatabaseKind() === 'postgres')('mercato exceptions reseal-secrets, WAL targets', () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await startTestApp();
    tenant = await createTestTenant(t, 'reseal-wal-cli');
  });
  afterAll(() => t.close());

  it("seals the WAL's HTTP target secrets and credential headers again under the new key", async () => {
    // A target saved before MERCATO_SECRETS_KEY was set: sealed under the key derived from the database.
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const box = createSecretBox(t.ctx, t.ctx.db.kysely);
    await box.ready();
    const db = t.ctx.db.kysely as Kysely<WalTables>;
    const target = { type: 'http', name: 'hook', url: 'https://hooks.example.com/in', secret };
    const headers = { Authorization: 'Bearer tok-wal-cli' };
    await withTenant(db, tenant.id, (trx) =>
      createNamespace(
        trx,
        { tenantId: tenant.id, actor: 'test' },
        'hooks',
        { targets: [{ ...target, headers }] },
        box,
      ),
    );
    const key = randomBytes(32).toString('base64');
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false', MERCATO_SECRETS_KEY: key };
    const first = await mercato(['exceptions', 'reseal-secrets'], env);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain(
      '1 WAL namespace(s) sealed again under the current key, 0 already under it',
    );
    const stored = await withTenant(db, tenant.id, (trx) =>
      trx
        .selectFrom('wal.namespaces')
        .select('targets')
        .where('name', '=', 'hooks')
        .executeTakeFirstOrThrow(),
    );
    const targets = (
      typeof stored.targets === 'string' ? JSON.parse(stored.targets) : stored.targets
    ) as Target[];
    const newBox = createSecretBox(
      { ...t.ctx, config: { ...t.ctx.config, secretsKey: key, secretsPreviousKeys: [] } },
      db,
    );
    expect(await openTargets(newBox, { tenantId: tenant.id, namespace: 'hooks' }, targets)).toMatchObject([
      { secret, headers },
    ]);
    const second = await mercato(['exceptions', 'reseal-secrets'], env);
    expect(second.output).toContain(
      '0 WAL namespace(s) sealed again under the current key, 1 already under it',
    );
  }, 120_000);
});
