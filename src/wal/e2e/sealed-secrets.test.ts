import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { send } from '../../identity/users/user-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { secretBoxOf } from '../../platform/secrets.ts';
import {
  startSecondProcess,
  startTestApp,
  type TestApp,
  testDatabaseKind,
  testNatsUrl,
  testRedisUrl,
} from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import type { Target } from '../namespaces/namespace.ts';
import { openTargets, resealTargets } from '../namespaces/sealed-targets.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';

const BACKENDS: { backend: string; env: Record<string, string> }[] = [
  { backend: 'postgres', env: {} },
  ...(testRedisUrl() ? [{ backend: 'redis-streams', env: { REDIS_URL: testRedisUrl()! } }] : []),
  ...(testNatsUrl() ? [{ backend: 'nats-jetstream', env: { NATS_URL: testNatsUrl()! } }] : []),
];

const BEARER = 'Bearer rcv-7f3a9c2e-token-for-the-receiver';
const API_KEY = 'k3y-0d9e8f7a6b5c4d3e2f1a';
const COOKIE = 'session=c00kie-v4lue-9a8b7c6d';

/** The stored row's targets, as a database reader (or a backup) sees them. */
async function storedTargets(t: TestApp, tenantId: string, name: string): Promise<Target[]> {
  const { rows } = await withSystem(walDb(t), (trx) =>
    sql<{ targets: unknown }>`
      select targets from wal.namespaces where tenant_id = ${tenantId} and name = ${name}`.execute(trx),
  );
  const raw = rows[0]?.targets;
  return (typeof raw === 'string' ? JSON.parse(raw) : raw) as Target[];
}

// A database reader, a backup or a log of wal.namespaces finds no signing secret and no receiver
// credential: they are sealed (platform/secrets.ts) and opened where a delivery signs and sends.
describe.each(BACKENDS)('WAL target secrets stored sealed on $backend', ({ backend, env }) => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    t = await startTestApp(
      { ...env, MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    shop = await createTestTenant(t, 'wal-sealed');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t.close();
    for (const receiver of receivers) await receiver.close();
  });

  async function receiver(): Promise<Receiver> {
    const made = await startReceiver();
    receivers.push(made);
    return made;
  }

  const httpTarget = (url: string, secret: string) => ({
    name: 'hook',
    type: 'http',
    url,
    secret,
    timeoutMs: 2000,
    headers: { Authorization: BEARER, 'X-Api-Key': API_KEY, Cookie: COOKIE, 'X-Trace': 'plain-trace' },
  });

  async function delivered(r: Receiver, namespace: string) {
    const response = await post(t.app, '/api/v1/wal/write', { namespace, payload: { n: 1 } }, admin);
    expect(response.statusCode, response.body).toBe(202);
    const { messageId } = response.json<{ messageId: string }>();
    return until(() => r.received.find((got) => got.event.id === messageId), 'delivery');
  }

  const verifies = (secret: string, got: Awaited<ReturnType<typeof delivered>>) =>
    new Webhook(secret).verify(got.body, {
      'webhook-id': String(got.headers['webhook-id']),
      'webhook-timestamp': String(got.headers['webhook-timestamp']),
      'webhook-signature': String(got.headers['webhook-signature']),
    });

  it('stores the signing secret and credential headers sealed, and still delivers signed with them', async () => {
    const r = await receiver();
    const secret = newSecret();
    const created = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'sealed', backend, targets: [httpTarget(r.url, secret)] },
      admin,
    );
    expect(created.statusCode, created.body).toBe(201);
    const stored = await storedTargets(t, shop.id, 'sealed');
    const text = JSON.stringify(stored);
    for (const value of [secret, BEARER, API_KEY, COOKIE]) expect(text).not.toContain(value);
    expect(stored[0]).toMatchObject({
      secret: { sealed: expect.stringMatching(/^v1\./) },
      headers: {
        Authorization: { sealed: expect.any(String) },
        'X-Api-Key': { sealed: expect.any(String) },
        Cookie: { sealed: expect.any(String) },
        'X-Trace': 'plain-trace',
      },
    });
    const got = await delivered(r, 'sealed');
    expect(verifies(secret, got)).toMatchObject({ data: { n: 1 } });
    expect(got.headers).toMatchObject({
      authorization: BEARER,
      'x-api-key': API_KEY,
      cookie: COOKIE,
      'x-trace': 'plain-trace',
    });
  });

  it.runIf(backend === 'postgres')(
    'masks credential headers in answers and the audit log, and keeps them when a PUT sends the masked values back',
    async () => {
      const r = await receiver();
      const secret = newSecret();
      const created = await post(
        t.app,
        '/api/v1/wal/namespaces',
        { name: 'masked', targets: [httpTarget(r.url, secret)] },
        admin,
      );
      expect(created.statusCode, created.body).toBe(201);
      for (const answer of [
        created,
        await send(t.app, 'GET', '/api/v1/wal/namespaces/masked', admin),
        await send(t.app, 'GET', '/api/v1/wal/namespaces', admin),
      ]) {
        for (const value of [secret, BEARER, API_KEY, COOKIE]) expect(answer.body).not.toContain(value);
        expect(answer.body).toContain('plain-trace');
      }
      const shown = (await send(t.app, 'GET', '/api/v1/wal/namespaces/masked', admin)).json<{
        targets: { headers: Record<string, string> }[];
      }>();
      expect(shown.targets[0]!.headers).toEqual({
        Authorization: `…${BEARER.slice(-4)}`,
        'X-Api-Key': `…${API_KEY.slice(-4)}`,
        Cookie: `…${COOKIE.slice(-4)}`,
        'X-Trace': 'plain-trace',
      });
      // Sent back as answered (masked values, circuit and all but the read-only fields): kept.
      const targets = shown.targets.map(({ circuit: _c, ...target }: Record<string, unknown>) => target);
      const kept = await send(t.app, 'PUT', '/api/v1/wal/namespaces/masked', admin, { targets });
      expect(kept.statusCode, kept.body).toBe(200);
      const got = await delivered(r, 'masked');
      expect(verifies(secret, got)).toMatchObject({ data: { n: 1 } });
      expect(got.headers).toMatchObject({ authorization: BEARER, 'x-api-key': API_KEY, cookie: COOKIE });
      // A new value replaces the stored one.
      const replaced = await send(t.app, 'PUT', '/api/v1/wal/namespaces/masked', admin, {
        targets: [
          { ...targets[0], headers: { ...shown.targets[0]!.headers, Authorization: 'Bearer rotated' } },
        ],
      });
      expect(replaced.statusCode, replaced.body).toBe(200);
      const again = await until(async () => {
        const next = await delivered(r, 'masked');
        return next.headers.authorization === 'Bearer rotated' ? next : undefined;
      }, 'a delivery with the new header');
      expect(again.headers).toMatchObject({ 'x-api-key': API_KEY, cookie: COOKIE });
      const { rows } = await withSystem(walDb(t), (trx) =>
        sql<{ details: unknown }>`
          select details from wal.audit_log where subject = 'namespace:masked'`.execute(trx),
      );
      expect(rows.length).toBeGreaterThanOrEqual(3);
      const audit = JSON.stringify(rows);
      for (const value of [secret, BEARER, API_KEY, COOKIE, 'Bearer rotated']) {
        expect(audit).not.toContain(value);
      }
      expect(audit).toContain(`…${API_KEY.slice(-4)}`);
    },
  );

  it.runIf(backend === 'postgres')(
    'delivers signed from a row written in clear, as before secrets were sealed, and seals it',
    async () => {
      const r = await receiver();
      const secret = newSecret();
      // As the WAL wrote it before: the secret and every header in clear.
      await addNamespace(t, shop.id, 'legacy', {
        targets: JSON.stringify([{ ...httpTarget(r.url, secret), enabled: true }]),
      });
      const got = await delivered(r, 'legacy');
      expect(verifies(secret, got)).toMatchObject({ data: { n: 1 } });
      expect(got.headers).toMatchObject({ authorization: BEARER, 'x-api-key': API_KEY });
      // What every start runs: the clear values sealed under the current key.
      const box = secretBoxOf(t.ctx);
      const result = await resealTargets(walDb(t), box);
      expect(result.resealed).toBeGreaterThanOrEqual(1);
      expect(result.unreadable).toEqual([]);
      const stored = await storedTargets(t, shop.id, 'legacy');
      const text = JSON.stringify(stored);
      for (const value of [secret, BEARER, API_KEY, COOKIE]) expect(text).not.toContain(value);
      expect(text).toContain('plain-trace');
      const [opened] = await openTargets(box, { tenantId: shop.id, namespace: 'legacy' }, stored);
      expect(opened).toMatchObject({ secret, headers: { Authorization: BEARER, 'X-Trace': 'plain-trace' } });
      // Sealed, it still delivers signed with the same secret.
      const after = await until(async () => {
        const next = await delivered(r, 'legacy');
        return verifies(secret, next) ? next : undefined;
      }, 'a signed delivery after sealing');
      expect(after.headers).toMatchObject({ authorization: BEARER });
      expect((await resealTargets(walDb(t), box)).resealed).toBe(0);
    },
  );

  it.runIf(backend === 'postgres' && testDatabaseKind() === 'postgres')(
    'seals a row written in clear when a WAL process starts',
    async () => {
      const secret = newSecret();
      await addNamespace(t, shop.id, 'legacy-start', {
        targets: JSON.stringify([{ ...httpTarget('http://127.0.0.1:9/hook', secret), enabled: false }]),
      });
      expect(JSON.stringify(await storedTargets(t, shop.id, 'legacy-start'))).toContain(secret);
      const second = await startSecondProcess(t.databaseUrl!, {
        modules: async (ctx) => [await createWal(ctx)],
      });
      await second.close();
      const text = JSON.stringify(await storedTargets(t, shop.id, 'legacy-start'));
      for (const value of [secret, BEARER, API_KEY, COOKIE]) expect(text).not.toContain(value);
    },
  );

  it.runIf(backend === 'postgres')('does not open a sealed value copied to another namespace', async () => {
    const r = await receiver();
    const secret = newSecret();
    await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'copy-from', targets: [httpTarget(r.url, secret)] },
      admin,
    );
    await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'copy-to', targets: [httpTarget(r.url, newSecret())] },
      admin,
    );
    const from = await storedTargets(t, shop.id, 'copy-from');
    await expect(
      openTargets(secretBoxOf(t.ctx), { tenantId: shop.id, namespace: 'copy-to' }, from),
    ).rejects.toThrow(/does not open/);
  });
});
