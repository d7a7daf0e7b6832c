import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseKind } from '../platform/testing/test-databases.ts';
import { mercato, runMercato } from './mercato-process.ts';

const PASSWORD = 'demo-password-1234';

// The embedded shape: the commands run while no server holds the data directory.
describe.runIf(testDatabaseKind() === 'pglite')('mercato wal', () => {
  let dataDir: string;
  const env = () => ({ MERCATO_DATA_DIR: dataDir, PORT: '0', MERCATO_DEMO_PASSWORD: PASSWORD });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mercato-wal-cli-'));
    const server = runMercato(['start'], env());
    const [, base] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'demo', email: 'admin@demo.test', password: PASSWORD }),
    });
    const { accessToken } = (await login.json()) as { accessToken: string };
    const created = await fetch(`${base}/api/v1/wal/namespaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
      body: JSON.stringify({ name: 'orders' }),
    });
    expect(created.status).toBe(201);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes a message durably and prints its receipt', async () => {
    const args = ['wal', 'write', '--tenant', 'demo', '--namespace', 'orders', '--payload', '{"orderId":42}'];
    const result = await mercato([...args, '--key', 'order-42', '--message-id', 'cli-1'], env());
    expect(result.code, result.output).toBe(0);
    expect(JSON.parse(result.output)).toMatchObject({ messageId: 'cli-1', backend: 'postgres' });
  });

  it('says plainly what is wrong with a bad payload or an unknown namespace', async () => {
    const bad = await mercato(
      ['wal', 'write', '--tenant', 'demo', '--namespace', 'orders', '--payload', '{nope'],
      env(),
    );
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('--payload must be JSON');
    const unknown = await mercato(
      ['wal', 'write', '--tenant', 'demo', '--namespace', 'nope', '--payload', '{}'],
      env(),
    );
    expect(unknown.code).toBe(1);
    expect(unknown.output).toContain('tenant "demo" has no WAL namespace "nope"');
  });

  it('refuses a --delay, --key, --message-id or --limit the API would refuse, writing nothing', async () => {
    const write = ['wal', 'write', '--tenant', 'demo', '--namespace', 'orders', '--payload', '{"orderId":7}'];
    for (const [flags, said] of [
      [['--delay', 'soon'], "option '--delay <ms>' argument 'soon' is invalid"],
      [['--delay', '-5'], "option '--delay <ms>' argument '-5' is invalid"],
      [['--key', 'k'.repeat(201)], '--key must be 1 to 200 characters'],
      [['--message-id', 'has spaces'], '--message-id must be 1 to 200 visible ASCII characters'],
    ] as const) {
      const result = await mercato([...write, ...flags], env());
      expect(result.code, flags.join(' ')).toBe(1);
      expect(result.output).toContain(said);
      expect(result.output).not.toContain('    at ');
    }
    const limit = await mercato(['wal', 'dlq', 'orders', '--tenant', 'demo', '--limit', 'all'], env());
    expect(limit.code).toBe(1);
    expect(limit.output).toContain("option '--limit <n>' argument 'all' is invalid");
    expect(limit.output).not.toContain('    at ');
    const tail = runMercato(['wal', 'tail', 'orders', '--tenant', 'demo', '--from-start'], env());
    await tail.waitFor(/"messageId":"cli-1"/);
    tail.child.kill('SIGINT');
    await tail.exited;
    expect(tail.output()).not.toContain('"orderId":7');
  });

  it('tails a namespace from the start and stops on Ctrl-C', async () => {
    const tail = runMercato(['wal', 'tail', 'orders', '--tenant', 'demo', '--from-start'], env());
    const [line] = await tail.waitFor(/\{"messageId":"cli-1".*\}/);
    expect(JSON.parse(line)).toMatchObject({ messageId: 'cli-1', key: 'order-42', payload: { orderId: 42 } });
    tail.child.kill('SIGINT');
    expect(await tail.exited).toBe(0);
  });

  it('lists dead letters, and says when there are none', async () => {
    const result = await mercato(['wal', 'dlq', 'orders', '--tenant', 'demo'], env());
    expect(result.code).toBe(0);
    expect(result.output).toContain('no dead letters in orders');
  });
});
