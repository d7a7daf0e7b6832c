import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseKind } from '../platform/testing/test-databases.ts';
import { mercato, runMercato } from './mercato-process.ts';

const FIRST = 'first-password-1234';
const TOUR = 'demo-password-1234';

type Server = { base: string; output: string; stop(): Promise<void> };

// The embedded shape, as a reader of the README meets it: the quickstart, then the API tour
// with another MERCATO_DEMO_PASSWORD on the same data directory.
describe.runIf(testDatabaseKind() === 'pglite')('mercato users set-password', () => {
  let dataDir: string;
  const env = (password: string) => ({
    MERCATO_DATA_DIR: dataDir,
    PORT: '0',
    MERCATO_DEMO_PASSWORD: password,
  });

  async function start(password: string): Promise<Server> {
    const server = runMercato(['start'], env(password));
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
    return {
      base: base!,
      output: server.output(),
      async stop() {
        server.child.kill('SIGTERM');
        expect(await server.exited).toBe(0);
      },
    };
  }

  const login = (base: string, email: string, password: string, tenant = 'demo') =>
    fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenant, email, password }),
    });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mercato-users-cli-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  let refreshToken: string;

  it('warns at start when MERCATO_DEMO_PASSWORD is not the one the data directory was seeded with', async () => {
    const first = await start(FIRST);
    const session = await login(first.base, 'admin@demo.test', FIRST);
    expect(session.status).toBe(200);
    refreshToken = ((await session.json()) as { refreshToken: string }).refreshToken;
    expect(first.output).not.toContain('set-password');
    await first.stop();

    const second = await start(TOUR);
    expect(second.output).toContain('MERCATO_DEMO_PASSWORD is not the password of');
    expect(second.output).toContain(
      'npx mercato users set-password --tenant demo --email admin@demo.test --password "$MERCATO_DEMO_PASSWORD"',
    );
    expect(second.output).not.toContain(TOUR);
    expect((await login(second.base, 'admin@demo.test', TOUR)).status).toBe(401);
    await second.stop();
  }, 240_000);

  it('refuses a short password and an unknown user, saying which', async () => {
    const short = await mercato(
      ['users', 'set-password', '--tenant', 'demo', '--email', 'admin@demo.test', '--password', 'short'],
      env(TOUR),
    );
    expect(short.code).toBe(1);
    expect(short.output).toContain('--password must be at least 12 characters');
    const unknown = await mercato(
      ['users', 'set-password', '--tenant', 'demo', '--email', 'nobody@demo.test', '--password', TOUR],
      env(TOUR),
    );
    expect(unknown.code).toBe(1);
    expect(unknown.output).toContain('tenant "demo" has no user nobody@demo.test');
    const tenant = await mercato(
      ['users', 'set-password', '--tenant', 'nope', '--email', 'admin@demo.test', '--password', TOUR],
      env(TOUR),
    );
    expect(tenant.code).toBe(1);
    expect(tenant.output).toContain('no tenant with slug "nope"');
  }, 120_000);

  it('sets the password, signs out the old sessions, and the warning is gone', async () => {
    for (const [tenant, email] of [
      ['platform', 'admin@platform.test'],
      ['demo', 'admin@demo.test'],
      ['demo', 'customer@demo.test'],
    ] as const) {
      const result = await mercato(
        ['users', 'set-password', '--tenant', tenant, '--email', email, '--password', TOUR],
        env(TOUR),
      );
      expect(result.code, result.output).toBe(0);
      expect(result.output).toContain(`password of ${email} in tenant "${tenant}" set`);
    }
    const server = await start(TOUR);
    try {
      expect(server.output).not.toContain('set-password');
      expect((await login(server.base, 'admin@demo.test', TOUR)).status).toBe(200);
      expect((await login(server.base, 'admin@platform.test', TOUR, 'platform')).status).toBe(200);
      expect((await login(server.base, 'admin@demo.test', FIRST)).status).toBe(401);
      const refreshed = await fetch(`${server.base}/api/v1/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refreshToken }),
      });
      expect(refreshed.status).toBe(401);
    } finally {
      await server.stop();
    }
  }, 240_000);
});
