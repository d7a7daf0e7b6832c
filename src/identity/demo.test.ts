import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { login } from './auth/auth-test-fixtures.ts';
import { seedDemo } from './demo.ts';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

async function countUsers(app: TestApp): Promise<number> {
  const row = await app.identity.deps.db
    .selectFrom('identity.users')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('demo seed', () => {
  it('creates the demo tenant, its admin and customer, and a platform admin, all signing in with one password', async () => {
    const seeded = await seedDemo(t.identity.deps, undefined);
    expect(seeded.created).toBe(true);
    expect(seeded.password).toMatch(/^[A-Za-z0-9]{20}$/);
    const password = seeded.password!;
    for (const [tenant, email] of [
      ['demo', 'admin@demo.test'],
      ['demo', 'customer@demo.test'],
      ['platform', 'admin@platform.test'],
    ] as const) {
      await expect(login(t.app, tenant, email, password), email).resolves.toHaveProperty('accessToken');
    }
    const { accessToken } = await login(t.app, 'demo', 'customer@demo.test', password);
    const profile = await t.app.inject({
      method: 'GET',
      url: '/api/v1/users/profile',
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(profile.json()).toMatchObject({ name: 'Demo Customer', role: 'customer' });
    const root = await login(t.app, 'platform', 'admin@platform.test', password);
    const tenants = await t.app.inject({
      method: 'GET',
      url: '/api/v1/tenants',
      headers: { authorization: `Bearer ${root.accessToken}` },
    });
    expect(tenants.json().items).toEqual(
      expect.arrayContaining([expect.objectContaining({ slug: 'demo', name: 'Demo Shop' })]),
    );
  });

  it('creates nothing on a second call', async () => {
    expect((await seedDemo(t.identity.deps, 'another-password-123')).created).toBe(false);
    expect(await countUsers(t)).toBe(3);
  });

  it("warns, naming mercato users set-password, when the given password is not the demo users' one", async () => {
    const seeded = await seedDemo(t.identity.deps, 'another-password-123');
    const warning = (seeded.warning ?? []).join('\n');
    expect(warning).toContain('MERCATO_DEMO_PASSWORD is not the password of');
    for (const [tenant, email] of [
      ['platform', 'admin@platform.test'],
      ['demo', 'admin@demo.test'],
      ['demo', 'customer@demo.test'],
    ]) {
      expect(warning).toContain(
        `mercato users set-password --tenant ${tenant} --email ${email} --password "$MERCATO_DEMO_PASSWORD"`,
      );
    }
    // The password itself is never printed.
    expect(warning).not.toContain('another-password-123');
  });

  it('uses the given password, and seeds once when two processes start together', async () => {
    const fresh = await startTestApp();
    try {
      const both = await Promise.all([
        seedDemo(fresh.identity.deps, 'given-password-123'),
        seedDemo(fresh.identity.deps, 'given-password-123'),
      ]);
      expect(both.some((s) => s.created)).toBe(true);
      expect(await countUsers(fresh)).toBe(3);
      await expect(login(fresh.app, 'demo', 'admin@demo.test', 'given-password-123')).resolves.toBeDefined();
      // Started again with the same password: nothing to warn about.
      expect(await seedDemo(fresh.identity.deps, 'given-password-123')).toEqual({ created: false });
    } finally {
      await fresh.close();
    }
  });
});
