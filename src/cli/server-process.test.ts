import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneTestDatabase, testDatabaseKind, testServerUrl } from '../platform/testing/test-databases.ts';
import { mercato, runMercato } from './mercato-process.ts';

const PASSWORD = 'demo-password-1234';

async function json(url: string, init?: RequestInit) {
  const response = await fetch(url, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** A start-up failure: exit code 1 and one line on stderr saying what to do, without a stack trace. */
function expectOneLineFailure(result: { code: unknown; output: string; errors: string }, pattern: RegExp) {
  expect(result.code, result.output).toBe(1);
  const lines = result.errors.trim().split('\n');
  expect(lines, result.errors).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.output).not.toMatch(/^\s+at /m);
}

async function login(base: string, tenant: string, email: string, password = PASSWORD) {
  return json(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant, email, password }),
  });
}

// Process tests start the real `mercato` command; the embedded shape is the default one.
describe.runIf(testDatabaseKind() === 'pglite')('mercato start, embedded', () => {
  let dataDir: string;
  const env = () => ({ MERCATO_DATA_DIR: dataDir, PORT: '0' });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mercato-data-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('seeds the demo on first start, prints the generated password once and the URLs', async () => {
    const server = runMercato(['start'], env());
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
    const out = server.output();
    const password = out.match(/shown this once: (\S+)/)?.[1];
    expect(password).toBeDefined();
    expect(out).toMatch(/Docs +http:\/\/127\.0\.0\.1:\d+\/docs/);
    expect(out).toMatch(/Metrics +http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect((await login(base!, 'demo', 'admin@demo.test', password)).status).toBe(200);
    expect((await login(base!, 'demo', 'customer@demo.test', password)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(existsSync(join(dataDir, 'mercato.pid'))).toBe(false);

    const again = runMercato(['start'], env());
    await again.waitFor(/API +http/);
    expect(again.output()).not.toMatch(/shown this once/);
    again.child.kill('SIGINT');
    expect(await again.exited, again.output()).toBe(0);
  });

  it('says plainly that the data directory is in use when a command runs beside the server', async () => {
    const server = runMercato(['start'], env());
    await server.waitFor(/API +http/);
    const result = await mercato(
      [
        'tenants',
        'create',
        '--slug',
        'acme',
        '--name',
        'Acme',
        '--admin-email',
        'a@acme.test',
        '--admin-password',
        PASSWORD,
      ],
      env(),
    );
    expect(result.code).toBe(1);
    expect(result.output).toContain(`in use by a running Mercato (pid ${server.child.pid})`);
    expect(result.output).toMatch(/stop that server/);
    server.child.kill('SIGTERM');
    await server.exited;

    const created = await mercato(
      [
        'tenants',
        'create',
        '--slug',
        'acme',
        '--name',
        'Acme',
        '--admin-email',
        'a@acme.test',
        '--admin-password',
        PASSWORD,
      ],
      env(),
    );
    expect(created.code).toBe(0);
    expect(JSON.parse(created.output)).toMatchObject({
      slug: 'acme',
      admin: { email: 'a@acme.test', role: 'admin' },
    });
    const user = await mercato(
      [
        'users',
        'create',
        '--tenant',
        'acme',
        '--email',
        'ops@acme.test',
        '--password',
        PASSWORD,
        '--role',
        'operator',
      ],
      env(),
    );
    expect(user.code).toBe(0);
    expect(JSON.parse(user.output)).toMatchObject({ email: 'ops@acme.test', role: 'operator' });
  }, 120_000);

  it('finishes a request in flight when it receives SIGTERM', async () => {
    const server = runMercato(['start'], env());
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
    const body = JSON.stringify({ tenant: 'acme', email: 'a@acme.test', password: PASSWORD });
    // Headers and half the body go out before the signal; the rest after: the request is in flight.
    const request = httpRequest(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      request.on('response', (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      request.on('error', reject);
    });
    request.write(body.slice(0, 10));
    // Long enough for a busy machine to have taken the request before the signal (else 503 closing).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    server.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    request.end(body.slice(10));
    const answered = await response;
    expect(answered.status, answered.text).toBe(200);
    expect(JSON.parse(answered.text)).toHaveProperty('accessToken');
    expect(await server.exited).toBe(0);
  });

  it('keeps every acknowledged registration after kill -9 and takes over the stale lock', async () => {
    const server = runMercato(['start'], env());
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
    const emails = Array.from({ length: 8 }, (_, i) => `crash${i}@acme.test`);
    const acknowledged = await Promise.all(
      emails.map((email) =>
        json(`${base}/api/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tenant: 'acme', email, password: PASSWORD, name: 'Crash Test' }),
        }),
      ),
    );
    expect(acknowledged.map((r) => r.status)).toEqual(emails.map(() => 201));
    server.child.kill('SIGKILL');
    await server.exited;
    expect(existsSync(join(dataDir, 'mercato.pid'))).toBe(true);

    const restarted = runMercato(['start'], env());
    const [, base2] = await restarted.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
    for (const email of emails) expect((await login(base2!, 'acme', email)).status).toBe(200);
    restarted.child.kill('SIGTERM');
    expect(await restarted.exited).toBe(0);
  });

  it('stops with a message naming the variable when the configuration is bad', async () => {
    const result = await mercato(['start'], { ...env(), PORT: 'eighty' });
    expect(result.code).toBe(1);
    expect(result.output).toContain(
      'Configuration error: PORT must be a whole number from 0 to 65535, got "eighty"',
    );
  });

  it('says in one line that the port is in use, without a stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const result = await mercato(['start'], { ...env(), PORT: port });
      expectOneLineFailure(result, new RegExp(`127\\.0\\.0\\.1:${port}.*in use.*set PORT`));
      expect(existsSync(join(dataDir, 'mercato.pid'))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('says in one line that the data directory is in use by a running server', async () => {
    const server = runMercato(['start'], env());
    await server.waitFor(/API +http/);
    try {
      const second = await mercato(['start'], env());
      expectOneLineFailure(
        second,
        new RegExp(`in use by a running Mercato \\(pid ${server.child.pid}\\).*MERCATO_DATA_DIR`),
      );
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('serves with Redis and NATS unreachable, and /health/ready names both', async () => {
    const server = runMercato(['start'], {
      ...env(),
      REDIS_URL: 'redis://127.0.0.1:1',
      NATS_URL: 'nats://127.0.0.1:1',
    });
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
    const ready = await json(`${base}/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.body['down']).toEqual(expect.arrayContaining(['redis', 'nats']));
    expect((await json(`${base}/health/live`)).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).toBe(0);
    // One warning each, not one per reconnection attempt.
    expect(server.output().match(/Redis at 127\.0\.0\.1:1 is unreachable/g)).toHaveLength(1);
    expect(server.output().match(/NATS at 127\.0\.0\.1:1 is unreachable/g)).toHaveLength(1);
  });

  it('answers --help for every command', async () => {
    for (const args of [[], ['start'], ['migrate'], ['tenants', 'create'], ['users', 'create']]) {
      const result = await mercato([...args, '--help'], env());
      expect(result.code).toBe(0);
      expect(result.output).toMatch(/Usage: mercato/);
    }
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('mercato start on PostgreSQL', () => {
  it('says in one line that the database does not exist', async () => {
    const url = new URL(testServerUrl('mercato_no_such_database'));
    const result = await mercato(['start'], { DATABASE_URL: url.toString(), PORT: '0' });
    expectOneLineFailure(result, /database "mercato_no_such_database" does not exist.*createdb/);
  });

  it('says the same in one line for any other command, such as migrate', async () => {
    const url = new URL(testServerUrl('mercato_no_such_database'));
    const result = await mercato(['migrate'], { DATABASE_URL: url.toString() });
    expectOneLineFailure(result, /database "mercato_no_such_database" does not exist.*createdb/);
  });

  it('retries an unreachable PostgreSQL, one line per attempt naming it (no password), then stops with one line', async () => {
    const result = await mercato(['start'], {
      DATABASE_URL: 'postgres://mercato:secret-password@127.0.0.1:1/shop',
      MERCATO_DB_CONNECT_TIMEOUT_SECONDS: '2',
      PORT: '0',
    });
    expectOneLineFailure(
      result,
      /PostgreSQL at 127\.0\.0\.1:1\/shop is not reachable .* after 2 s: start it or fix DATABASE_URL/,
    );
    const attempts = result.output.match(
      /PostgreSQL at 127\.0\.0\.1:1\/shop is not reachable .*attempt \d+, retrying/g,
    );
    expect(attempts?.length).toBeGreaterThanOrEqual(2);
    expect(result.output).not.toContain('secret-password');
  });

  it('seeds no demo data with MERCATO_DEMO=false', async () => {
    const database = await cloneTestDatabase();
    try {
      const server = runMercato(['start'], { DATABASE_URL: database.url, PORT: '0', MERCATO_DEMO: 'false' });
      const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
      expect(server.output()).not.toMatch(/Seeded|shown this once/);
      expect((await login(base!, 'demo', 'admin@demo.test')).status).toBe(401);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      await database.drop();
    }
  });

  it('serves from several worker processes and stops them all on SIGTERM', async () => {
    const database = await cloneTestDatabase();
    try {
      const server = runMercato(['start'], {
        DATABASE_URL: database.url,
        PORT: '0',
        MERCATO_DEMO_PASSWORD: PASSWORD,
        MERCATO_WORKERS: '2',
      });
      const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
      await server.waitFor(/Workers +2/);
      const { body } = await login(base!, 'demo', 'customer@demo.test');
      const reads = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`${base}/api/v1/users/profile`, {
            headers: { authorization: `Bearer ${body['accessToken']}` },
          }),
        ),
      );
      expect(reads.map((r) => r.status)).toEqual(reads.map(() => 200));
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      await database.drop();
    }
  });

  it('runs the same migrations and serves with DATABASE_URL', async () => {
    const database = await cloneTestDatabase();
    try {
      const migrated = await mercato(['migrate'], { DATABASE_URL: database.url });
      expect(migrated.code).toBe(0);
      const server = runMercato(['start'], {
        DATABASE_URL: database.url,
        PORT: '0',
        MERCATO_DEMO_PASSWORD: PASSWORD,
        MERCATO_WORKERS: '1',
      });
      const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/);
      expect(server.output()).toContain('Mercato is serving on PostgreSQL');
      expect((await login(base!, 'demo', 'admin@demo.test')).status).toBe(200);
      const ready = await json(`${base}/health/ready`);
      expect(ready).toMatchObject({ status: 200, body: { status: 'ready', checks: { postgres: 'up' } } });
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } finally {
      await database.drop();
    }
  });
});
