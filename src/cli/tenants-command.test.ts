import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SYSTEM_TOPICS } from '../platform/events/index.ts';
import { startTestApp, testDatabaseKind } from '../platform/testing/index.ts';
import { mercato } from './mercato-process.ts';

// The command runs as its own process against the test app's PostgreSQL database (PGlite's data
// directory would be held by the test app).
describe.runIf(testDatabaseKind() === 'postgres')('mercato tenants create', () => {
  const started = startTestApp();
  afterAll(async () => (await started).close());

  it("makes the tenant's system namespaces in its creation, as POST /tenants does", async () => {
    const t = await started;
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false' };
    const result = await mercato(
      [
        'tenants',
        'create',
        '--slug',
        'cli-shop',
        '--name',
        'CLI Shop',
        '--admin-email',
        'owner@cli.test',
        '--admin-password',
        'a-long-password-1',
      ],
      env,
    );
    expect(result.code, result.output).toBe(0);
    const tenantId = JSON.parse(result.output.slice(result.output.indexOf('{'))).id as string;
    const { rows } = await sql<{ name: string }>`
      select name from wal.namespaces where tenant_id = ${tenantId} and system order by name`.execute(
      t.ctx.db.kysely,
    );
    expect(rows.map((r) => r.name)).toEqual([...SYSTEM_TOPICS].sort());
  }, 120_000);

  it('refuses what POST /tenants and POST /users refuse (a short password, a bad email or slug), creating nothing', async () => {
    const t = await started;
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false' };
    const tenant = (slug: string, email: string, password: string) =>
      mercato(
        [
          'tenants',
          'create',
          '--slug',
          slug,
          '--name',
          'Shop',
          '--admin-email',
          email,
          '--admin-password',
          password,
        ],
        env,
      );
    const short = await tenant('cli-short', 'owner@short.test', 'short');
    expect(short.code).toBe(1);
    expect(short.output.trim()).toBe('--admin-password must be at least 12 characters');
    const email = await tenant('cli-email', 'not-an-email', 'a-long-password-1');
    expect(email.code).toBe(1);
    expect(email.output.trim()).toBe(
      '--admin-email must be an email address of at most 254 characters, not "not-an-email"',
    );
    const slug = await tenant('Not A Slug', 'owner@slug.test', 'a-long-password-1');
    expect(slug.code).toBe(1);
    expect(slug.output.trim()).toBe(
      '--slug must be 1 to 63 lowercase letters, digits and inner dashes, not "Not A Slug"',
    );
    // The reserved slug is the store's rule (createTenant), which the command applies before it starts.
    const reserved = await tenant('platform', 'owner@reserved.test', 'a-long-password-1');
    expect(reserved.code).toBe(1);
    expect(reserved.output.trim()).toBe('--slug "platform" is reserved');
    const user = (email: string, password: string) =>
      mercato(['users', 'create', '--tenant', 'platform', '--email', email, '--password', password], env);
    const shortUser = await user('someone@platform.test', 'short');
    expect(shortUser.code).toBe(1);
    expect(shortUser.output.trim()).toBe('--password must be at least 12 characters');
    const badUser = await user('someone', 'a-long-password-1');
    expect(badUser.code).toBe(1);
    expect(badUser.output.trim()).toBe(
      '--email must be an email address of at most 254 characters, not "someone"',
    );

    // Without --name the email names the user; one longer than a name may be gives its local part.
    const longEmail = `${'l'.repeat(60)}@${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(10)}.test`;
    const long = await user(longEmail, 'a-long-password-1');
    expect(long.code, long.output).toBe(0);
    expect(JSON.parse(long.output.slice(long.output.indexOf('{')))).toMatchObject({
      email: longEmail,
      name: 'l'.repeat(60),
    });

    const { rows } = await sql<{ n: number }>`
      select (select count(*) from identity.tenants where slug like 'cli-%' and slug <> 'cli-shop')::int
        + (select count(*) from identity.users where email like 'someone%')::int as n`.execute(
      t.ctx.db.kysely,
    );
    expect(rows[0]!.n).toBe(0);
  }, 120_000);
});
