import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { send } from '../../identity/users/user-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { MIGRATIONS_DIR } from '../../platform/db/migrator.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { maskHeaderValue, maskSecret } from '../namespaces/masks.ts';
import { isSensitiveHeader } from '../namespaces/sealed-targets.ts';
import { walDb } from '../write/write-test-fixtures.ts';

const MIGRATION = '0048_wal_audit_masks_credentials.sql';
const BEARER = 'Bearer rcv-7f3a9c2e-token-for-the-receiver';
const SHORT_KEY = 'k3y-0d9e8f7a';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OLD_SECRET = 'whsec_QWxhZGRpbjpvcGVuIHNlc2FtZQ0a1b2c3d';
const CLEAR = [BEARER, SHORT_KEY, SECRET, OLD_SECRET];

// Header names the migration's pattern and isSensitiveHeader must class alike.
const NAMES = [
  'Authorization',
  'authorization',
  'Proxy-Authorization',
  'Cookie',
  'Set-Cookie',
  'X-Api-Key',
  'X-KEY',
  'X-Auth-Token',
  'x-ToKeN',
  'X-Client-Secret',
  'X-Password',
  'X-Pwd',
  'X-Credential',
  'X-Session-Id',
  'X-Hub-Signature-256',
  'Monkey',
  'X-Trace',
  'Content-Type',
  'Accept',
  'User-Agent',
  'X-Request-Id',
  'X-Tenant',
  'Idempotency-Id',
  'Traceparent',
];

/** An HTTP target as the audit log kept it before 6dfe34c: secret masked, headers in clear. */
const oldTarget = (name: string, headers: Record<string, string>, secret = maskSecret(SECRET)) => ({
  name,
  type: 'http',
  url: 'https://hooks.example.com/in',
  secret,
  timeoutMs: 2000,
  enabled: true,
  headers,
});
const settings = (targets: unknown[]) => ({ name: 'orders', backend: 'postgres', targets });

/** Runs the migration's SQL as the migrator does (the database is already at the newest version). */
async function runMigration(t: TestApp): Promise<void> {
  const body = await readFile(join(MIGRATIONS_DIR, MIGRATION), 'utf8');
  await t.ctx.db.withScriptRunner((runner) => runner.exec(`begin; ${body}; commit;`));
}

type Targets = { headers?: Record<string, string> }[];
type Details = {
  after: { targets: Targets };
  before: { targets: Targets };
  changes: { targets: { from: Targets; to: Targets } };
};
type Row = { action: string; details: Details };

// Audit entries written before credential headers were sealed hold them in clear; the upgrade's
// migration masks them as the code now does, so a database reader, a backup or a tenant admin
// reading GET /wal/audit finds no receiver credential from before.
describe(`WAL audit entries from before sealed credentials on ${testDatabaseKind()}`, () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({}, { modules: async (ctx) => [await createWal(ctx)] });
    shop = await createTestTenant(t, 'wal-audit-scrub');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t.close();
  });

  async function insert(action: string, details: unknown): Promise<string> {
    const id = uuidv7();
    await withTenant(walDb(t), shop.id, (trx) =>
      sql`insert into wal.audit_log (id, tenant_id, actor, action, subject, details)
        values (${id}, ${shop.id}, ${`user:${shop.adminId}`}, ${action}, 'namespace:orders',
          ${JSON.stringify(details)}::jsonb)`.execute(trx),
    );
    return id;
  }

  async function details(id: string): Promise<Row> {
    const { rows } = await withSystem(walDb(t), (trx) =>
      sql<Row>`select action, details from wal.audit_log where id = ${id}`.execute(trx),
    );
    const row = rows[0]!;
    return { ...row, details: typeof row.details === 'string' ? JSON.parse(row.details) : row.details };
  }

  it('masks credential header values and clear secrets of older audit entries, plain headers and other entries as they are', async () => {
    const headers = { Authorization: BEARER, 'x-api-key': SHORT_KEY, 'X-Trace': 'plain-trace-value-12345' };
    const created = await insert('namespace.created', { after: settings([oldTarget('hook', headers)]) });
    const updated = await insert('namespace.updated', {
      changes: {
        targets: {
          from: [oldTarget('hook', { Authorization: 'Bearer old-receiver-credential' })],
          to: [oldTarget('hook', headers), { name: 'db', type: 'sql', table: 'orders' }],
        },
      },
    });
    const deleted = await insert('namespace.deleted', {
      before: settings([oldTarget('hook', headers, OLD_SECRET)]),
    });
    const other = {
      target: 'hook',
      reason: 'gone',
      after: settings([oldTarget('hook', headers, OLD_SECRET)]),
    };
    const untouched = await insert('namespace.target_disabled', other);

    await runMigration(t);

    const masked = {
      Authorization: maskHeaderValue(BEARER),
      'x-api-key': '…',
      'X-Trace': 'plain-trace-value-12345',
    };
    expect(masked.Authorization).toBe(`…${BEARER.slice(-4)}`);
    expect((await details(created)).details.after.targets).toEqual([oldTarget('hook', masked)]);
    const changes = (await details(updated)).details.changes.targets;
    expect(changes.from).toEqual([
      oldTarget('hook', { Authorization: maskHeaderValue('Bearer old-receiver-credential') }),
    ]);
    expect(changes.to).toEqual([oldTarget('hook', masked), { name: 'db', type: 'sql', table: 'orders' }]);
    expect((await details(deleted)).details.before.targets).toEqual([
      oldTarget('hook', masked, maskSecret(OLD_SECRET)),
    ]);
    expect((await details(untouched)).details).toEqual(other);

    // Idempotent: masked values stay as they are.
    const once = await Promise.all([created, updated, deleted].map(details));
    await runMigration(t);
    expect(await Promise.all([created, updated, deleted].map(details))).toEqual(once);

    const page = await send(t.app, 'GET', '/api/v1/wal/audit?limit=100', admin);
    expect(page.statusCode).toBe(200);
    const items = page
      .json()
      .items.filter((item: { action: string }) => item.action !== 'namespace.target_disabled');
    expect(items).toHaveLength(3);
    for (const clear of [...CLEAR, 'old-receiver-credential'])
      expect(JSON.stringify(items)).not.toContain(clear);
    expect(JSON.stringify(items)).toContain('plain-trace-value-12345');
  });

  it('masks the header names isSensitiveHeader marks as credentials, and only those', async () => {
    const value = 'a-header-value-of-some-length';
    const headers = Object.fromEntries(NAMES.map((name) => [name, value]));
    const id = await insert('namespace.created', { after: settings([oldTarget('hook', headers)]) });
    await runMigration(t);
    const headersOf = (await details(id)).details.after.targets[0]?.headers ?? {};
    const maskedByMigration = NAMES.filter((name) => headersOf[name] !== value);
    expect(maskedByMigration).toEqual(NAMES.filter(isSensitiveHeader));
    expect(maskedByMigration.length).toBeGreaterThan(10);
    expect(NAMES.filter((name) => !isSensitiveHeader(name)).length).toBeGreaterThan(5);
  });
});
