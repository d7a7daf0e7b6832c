import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { SYSTEM_MIN_DEAD_RETENTION_SECONDS } from './system-namespaces.ts';

// MERCATO_WAL_MAX_RETENTION_SECONDS: the operator's bound on how long a namespace keeps finished
// messages (the disk is the operator's). The smallest cap the configuration takes: 7 days.
const CAP = 604_800;

let t: TestApp;
let tenantId: string;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp(
    { MERCATO_WAL_MAX_RETENTION_SECONDS: String(CAP) },
    { modules: async (ctx) => [await createWal(ctx)] },
  );
  const tenant = await createTestTenant(t, 'retention-cap');
  tenantId = tenant.id;
  admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
});

afterAll(async () => {
  await t.close();
});

const create = (name: string, settings: Record<string, unknown>) =>
  post(t.app, '/api/v1/wal/namespaces', { name, targets: [], ...settings }, admin);
const update = (name: string, payload: Record<string, unknown>) =>
  t.app.inject({ method: 'PUT', url: `/api/v1/wal/namespaces/${name}`, payload, headers: admin });
const view = async (name: string) => {
  const response = await t.app.inject({ url: `/api/v1/wal/namespaces/${name}`, headers: admin });
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ deliveredRetentionSeconds: number; deadRetentionSeconds: number }>();
};

describe('WAL namespaces: MERCATO_WAL_MAX_RETENTION_SECONDS', () => {
  it.each(['deliveredRetentionSeconds', 'deadRetentionSeconds'])(
    'refuses a %s above the cap on create with 400 VALIDATION_FAILED naming the field',
    async (field) => {
      const over = await create(`over-${field.slice(0, 4)}`, { [field]: CAP + 1 });
      expect(over.statusCode, over.body).toBe(400);
      expect(over.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(over.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ pointer: `/${field}` }] });
      expect(over.json().errors[0].message).toMatch(/at most 604800/);
    },
  );

  it('refuses a retention above the cap on update, and keeps the stored one', async () => {
    const created = await create('at-cap', { deliveredRetentionSeconds: CAP, deadRetentionSeconds: CAP });
    expect(created.statusCode, created.body).toBe(201);
    for (const field of ['deliveredRetentionSeconds', 'deadRetentionSeconds']) {
      const over = await update('at-cap', { [field]: 2_147_483_647 });
      expect(over.statusCode, over.body).toBe(400);
      expect(over.json()).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ pointer: `/${field}` }] });
    }
    expect(await view('at-cap')).toMatchObject({ deliveredRetentionSeconds: CAP, deadRetentionSeconds: CAP });
  });

  it("lets a system namespace's dead retention be set to its 7-day minimum under the smallest cap", async () => {
    expect(SYSTEM_MIN_DEAD_RETENTION_SECONDS).toBeLessThanOrEqual(CAP);
    const response = await update('product-events', {
      deadRetentionSeconds: SYSTEM_MIN_DEAD_RETENTION_SECONDS,
    });
    expect(response.statusCode, response.body).toBe(200);
    expect((await view('product-events')).deadRetentionSeconds).toBe(SYSTEM_MIN_DEAD_RETENTION_SECONDS);
  });

  it('shows the retention a namespace stored before the cap, and takes it back unchanged (GET, edit, PUT) but no higher', async () => {
    expect((await create('old', {})).statusCode).toBe(201);
    await sql`update wal.namespaces set delivered_retention_seconds = 2147483646
      where tenant_id = ${tenantId} and name = 'old'`.execute(t.ctx.db.kysely);
    const shown = await view('old');
    expect(shown.deliveredRetentionSeconds).toBe(2_147_483_646);
    // The default dead retention (30 days) is above this cap too: sent back as it is, accepted.
    const same = await update('old', {
      deliveredRetentionSeconds: shown.deliveredRetentionSeconds,
      deadRetentionSeconds: shown.deadRetentionSeconds,
      maxDelayMs: 1000,
    });
    expect(same.statusCode, same.body).toBe(200);
    const higher = await update('old', { deliveredRetentionSeconds: 2_147_483_647 });
    expect(higher.statusCode, higher.body).toBe(400);
    expect(higher.json()).toMatchObject({ errors: [{ pointer: '/deliveredRetentionSeconds' }] });
  });
});
