import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './platform/index.ts';
import { cloneTestDatabase, testDatabaseKind } from './platform/testing/test-databases.ts';
import { type RunningServer, startServer } from './server.ts';

const PASSWORD = 'demo-password-1234';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server on a database of its own (a fresh data directory on PGlite), the demo seeded at its start. */
async function startFresh(env: Record<string, string> = {}): Promise<RunningServer> {
  const where: Record<string, string> = {};
  if (testDatabaseKind() === 'pglite') {
    const dataDir = await mkdtemp(join(tmpdir(), 'mercato-demo-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    where['MERCATO_DATA_DIR'] = dataDir;
  } else {
    const database = await cloneTestDatabase();
    cleanups.push(() => database.drop());
    where['DATABASE_URL'] = database.url!;
  }
  const config = loadConfig({
    LOG_LEVEL: 'silent',
    PORT: '0',
    MERCATO_DEMO: 'true',
    MERCATO_DEMO_PASSWORD: PASSWORD,
    ...where,
    ...env,
  });
  const server = await startServer(config);
  cleanups.push(() => server.stop());
  return server;
}

describe('the demo store seeded at first start', () => {
  it('gives the demo shop products shoppers can see, shipping options and tax rates', {
    timeout: 120_000,
  }, async () => {
    const { app } = await startFresh();
    const products = await app.inject({
      method: 'GET',
      url: '/api/v1/products',
      headers: { 'x-tenant': 'demo' },
    });
    expect(products.statusCode).toBe(200);
    expect(products.json().items.length).toBeGreaterThan(0);
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { tenant: 'demo', email: 'admin@demo.test', password: PASSWORD },
    });
    const staff = { authorization: `Bearer ${login.json().accessToken}` };
    const options = await app.inject({ method: 'GET', url: '/api/v1/shipping-options', headers: staff });
    expect(options.json().items.length).toBeGreaterThan(0);
    const rates = await app.inject({ method: 'GET', url: '/api/v1/tax-rates', headers: staff });
    expect(rates.json().items.length).toBeGreaterThan(0);
  });

  it('starts without it when this process does not serve identity, whose login the seeding needs', {
    timeout: 120_000,
  }, async () => {
    const { app } = await startFresh({ MERCATO_MODULES: 'wal,catalog,inventory,cart' });
    const products = await app.inject({
      method: 'GET',
      url: '/api/v1/products',
      headers: { 'x-tenant': 'demo' },
    });
    expect(products.statusCode).toBe(200);
    expect(products.json().items).toEqual([]);
  });
});
