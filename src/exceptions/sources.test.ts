import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import { ConfigError, loadConfig } from '../platform/config/index.ts';
import type { AppContext } from '../platform/context.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { secretBoxOf } from '../platform/secrets.ts';
import { testDatabaseKind, until } from '../platform/testing/index.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type HttpAnswer,
  type OpsTenant,
  overHttp,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { resealSecrets } from './reseal.ts';
import { putSource } from './retry-test-fixtures.ts';
import { createSecretBox, SecretUnreadableError } from './secrets.ts';
import { openSecrets } from './source-store.ts';
import type { ExceptionsDb } from './tables.ts';

let t: ExceptionsTestApp;
let shop: OpsTenant;
let other: OpsTenant;

// The operator opened loopback to outbound calls, as the WAL's tests do
// (MERCATO_WAL_PRIVATE_TARGETS): sources then pass the same SSRF guard as WAL HTTP targets.
beforeAll(async () => {
  t = await startExceptionsApp({ MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' });
  shop = await createOpsTenant(t, 'src-shop');
  other = await createOpsTenant(t, 'src-other');
});
afterAll(() => t?.close());

const TOKEN = 'erp-token-4f9a1c7e2b';
const path = (type: string) => `/api/v1/exceptions/sources/${type}`;

describe('exception sources', () => {
  it('creates a source with its signing secret shown once, and never shows credentials or the secret again', async () => {
    const created = await send(t.app, 'PUT', path('ORDER'), shop.admin, {
      baseUrl: 'http://127.0.0.1:9/erp',
      credentials: { token: TOKEN },
      timeoutMs: 2000,
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.headers.location).toBe('/api/v1/exceptions/sources/ORDER');
    const body = created.json();
    expect(body).toMatchObject({
      interfaceType: 'ORDER',
      baseUrl: 'http://127.0.0.1:9/erp',
      timeoutMs: 2000,
      hasCredentials: true,
    });
    expect(body.signingSecret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(created.body).not.toContain(TOKEN);

    const one = await send(t.app, 'GET', path('ORDER'), shop.operator);
    const list = await send(t.app, 'GET', '/api/v1/exceptions/sources', shop.operator);
    expect(one.statusCode).toBe(200);
    expect(list.json().items).toEqual([one.json()]);
    for (const answer of [one.body, list.body]) {
      expect(answer).not.toContain(TOKEN);
      expect(answer).not.toContain(body.signingSecret);
      expect(answer).not.toContain('signingSecret');
    }

    // Stored encrypted: neither the token nor the signing secret is in the row.
    const row = await withTenant(t.ctx.db.kysely as unknown as ExceptionsDb, shop.id, (trx) =>
      trx.selectFrom('exceptions.sources').selectAll().executeTakeFirstOrThrow(),
    );
    expect(row.credentials_encrypted).toBeTruthy();
    expect(row.credentials_encrypted).not.toContain(TOKEN);
    expect(row.credentials_encrypted).not.toContain(body.signingSecret.slice(6));
  });

  it('replaces a source keeping its credentials and secret when omitted, removes credentials on null, and deletes it', async () => {
    const first = await putSource(t, shop, 'COLLECTION', {
      baseUrl: 'http://127.0.0.1:9/a',
      credentials: { username: 'mercato', password: 'pa55-w0rd' },
    });
    expect(first.signingSecret).toBeDefined();
    const replaced = await send(t.app, 'PUT', path('COLLECTION'), shop.admin, {
      baseUrl: 'http://127.0.0.1:9/b',
    });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json()).toMatchObject({
      baseUrl: 'http://127.0.0.1:9/b',
      hasCredentials: true,
      timeoutMs: 5000,
    });
    expect(replaced.json().signingSecret).toBeUndefined();
    expect(replaced.body).not.toContain('pa55-w0rd');

    const cleared = await send(t.app, 'PUT', path('COLLECTION'), shop.operator, {
      baseUrl: 'http://127.0.0.1:9/b',
      credentials: null,
    });
    expect(cleared.json()).toMatchObject({ hasCredentials: false });

    expect((await send(t.app, 'DELETE', path('COLLECTION'), shop.operator)).statusCode).toBe(204);
    expect((await send(t.app, 'GET', path('COLLECTION'), shop.operator)).statusCode).toBe(404);
    expect((await send(t.app, 'DELETE', path('COLLECTION'), shop.operator)).statusCode).toBe(404);
  });

  it.each([
    ['the cloud metadata address', 'http://169.254.169.254/latest'],
    ['a private address', 'http://10.0.0.1/erp'],
    ['a private address behind an IPv4-mapped IPv6 literal', 'http://[::ffff:10.0.0.1]/erp'],
    ['another private range with a port', 'https://192.168.1.20:8443/erp'],
  ])('refuses a source URL to %s (SSRF), naming /baseUrl', async (_what, baseUrl) => {
    const response = await send(t.app, 'PUT', path('DISTRIBUTION'), shop.admin, { baseUrl });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json().errors).toEqual([
      { in: 'body', pointer: '/baseUrl', message: 'destination refused: not a public address' },
    ]);
    expect((await send(t.app, 'GET', path('DISTRIBUTION'), shop.admin)).statusCode).toBe(404);
  });

  it.each([
    [{ baseUrl: 'ftp://127.0.0.1/erp' }, '/baseUrl'],
    [{ baseUrl: 'http://user:secret@127.0.0.1/erp' }, '/baseUrl'],
    [{ baseUrl: 'http://127.0.0.1/erp?x=1' }, '/baseUrl'],
    [{ baseUrl: 'not a url' }, '/baseUrl'],
    [{ baseUrl: 'http://127.0.0.1/erp', timeoutMs: 50 }, '/timeoutMs'],
    [{ baseUrl: 'http://127.0.0.1/erp', timeoutMs: 30_001 }, '/timeoutMs'],
    [{ baseUrl: 'http://127.0.0.1/erp', credentials: { token: 'two words' } }, '/credentials'],
    [{ baseUrl: 'http://127.0.0.1/erp', credentials: { username: 'a:b', password: 'x' } }, '/credentials'],
    [{ baseUrl: 'x'.repeat(2001) }, '/baseUrl'],
    [{ baseUrl: 'http://127.0.0.1/erp', extra: true }, '/extra'],
  ])('answers 400 problem+json naming the field for %j', async (body, pointer) => {
    const response = await send(t.app, 'PUT', path('VALIDATION'), shop.admin, body);
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().code).toBe('VALIDATION_FAILED');
    expect(response.json().errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    expect(response.body).not.toContain('secret@');
  });

  it('answers 400 naming /baseUrl for a URL under 2,000 characters as sent but over once percent-encoded', async () => {
    const baseUrl = `http://127.0.0.1/${'é'.repeat(1900)}`;
    const response = await send(t.app, 'PUT', path('VALIDATION'), shop.admin, { baseUrl });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().code).toBe('VALIDATION_FAILED');
    expect(response.json().errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/baseUrl']);
    expect((await send(t.app, 'GET', path('VALIDATION'), shop.admin)).statusCode).toBe(404);
  });

  it('answers 400 for an unknown interface type', async () => {
    const response = await send(t.app, 'PUT', path('INVOICE'), shop.admin, {
      baseUrl: 'http://127.0.0.1/erp',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors[0]).toMatchObject({ in: 'params', pointer: '/interfaceType' });
  });

  it("keeps each tenant's sources to itself", async () => {
    await putSource(t, shop, 'VALIDATION', { baseUrl: 'http://127.0.0.1:9/shop' });
    expect((await send(t.app, 'GET', path('VALIDATION'), other.operator)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', '/api/v1/exceptions/sources', other.operator)).json().items).toEqual([]);
    expect((await send(t.app, 'DELETE', path('VALIDATION'), other.operator)).statusCode).toBe(404);
    const own = await send(t.app, 'PUT', path('VALIDATION'), other.admin, {
      baseUrl: 'http://127.0.0.1:9/other',
    });
    expect(own.statusCode).toBe(201);
    expect((await send(t.app, 'GET', path('VALIDATION'), shop.operator)).json().baseUrl).toBe(
      'http://127.0.0.1:9/shop',
    );
  });

  it('is for operators and admins only: staff and customers 403, anonymous 401', async () => {
    const customer = await newCustomer(t, shop);
    const body = { baseUrl: 'http://127.0.0.1:9/erp' };
    for (const headers of [shop.staff, customer]) {
      expect((await send(t.app, 'GET', '/api/v1/exceptions/sources', headers)).statusCode).toBe(403);
      expect((await send(t.app, 'PUT', path('ORDER'), headers, body)).statusCode).toBe(403);
      expect((await send(t.app, 'DELETE', path('ORDER'), headers)).statusCode).toBe(403);
    }
    expect((await send(t.app, 'GET', '/api/v1/exceptions/sources', {})).statusCode).toBe(401);
    expect((await send(t.app, 'PUT', path('ORDER'), {}, body)).statusCode).toBe(401);
    // The integrations' key (wal:write only) may not either.
    expect((await send(t.app, 'GET', '/api/v1/exceptions/sources', shop.writer)).statusCode).toBe(403);
  });
});

describe('two first PUTs of one source at once', () => {
  const db = () => t.ctx.db.kysely as unknown as ExceptionsDb;
  const bodies = {
    'http://127.0.0.1:9/one': { baseUrl: 'http://127.0.0.1:9/one', credentials: { token: 'token-one' } },
    'http://127.0.0.1:9/two': { baseUrl: 'http://127.0.0.1:9/two', credentials: { token: 'token-two' } },
  };

  /** Both PUTs over their own connections, at once (an admin and an operator of the tenant). */
  const both = (tenant: OpsTenant, type: string) => {
    const http = overHttp(t);
    const [one, two] = Object.values(bodies);
    return Promise.all([
      http('PUT', path(type), tenant.admin, one),
      http('PUT', path(type), tenant.operator, two),
    ]);
  };

  /**
   * One made it (201, its signing secret shown), the other replaced it (200, no secret shown): one
   * row, holding the secret the 201 showed (a retry signed with it verifies), and the settings of
   * the 200, which came last.
   */
  async function expectMadeThenReplaced(tenant: OpsTenant, type: string, answers: HttpAnswer[]) {
    expect(answers.map((a) => a.statusCode).sort(), answers.map((a) => a.body).join('\n')).toEqual([
      200, 201,
    ]);
    const made = answers.find((a) => a.statusCode === 201)!.json();
    const replaced = answers.find((a) => a.statusCode === 200)!.json();
    expect(made.signingSecret).toMatch(/^whsec_/);
    expect(replaced.signingSecret).toBeUndefined();
    const rows = await withTenant(db(), tenant.id, (trx) =>
      trx
        .selectFrom('exceptions.sources')
        .selectAll()
        .where('interface_type', '=', type as 'ORDER')
        .execute(),
    );
    expect(rows).toHaveLength(1);
    const stored = await openSecrets(secretBoxOf(t.ctx), rows[0]!);
    expect(stored.signingSecret).toBe(made.signingSecret);
    expect(rows[0]!.base_url).toBe(replaced.baseUrl);
    expect(stored.credentials).toEqual(bodies[replaced.baseUrl as keyof typeof bodies].credentials);
  }

  it('makes the source once: one 201 with the secret it keeps, the other a 200 replacing it, never a 500', async () => {
    const tenant = await createOpsTenant(t, 'src-first-puts');
    for (let round = 0; round < 25; round += 1) {
      const type = ['ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION'][round % 4]!;
      await send(t.app, 'DELETE', path(type), tenant.admin);
      await expectMadeThenReplaced(tenant, type, await both(tenant, type));
    }
  });

  // The interleaving forced: both transactions find no row, then both insert. PGlite has one
  // session, so two transactions never meet there.
  it.runIf(testDatabaseKind() === 'postgres')(
    'makes it once when both requests found no source and insert together (PostgreSQL)',
    async () => {
      const tenant = await createOpsTenant(t, 'src-first-puts-held');
      // Another connection holds the table in SHARE mode: reads and row locks go on, inserts wait.
      const holder = new pg.Client({ connectionString: t.databaseUrl });
      await holder.connect();
      let answers: Promise<HttpAnswer[]>;
      try {
        await holder.query('begin');
        await holder.query('lock table exceptions.sources in share mode');
        answers = both(tenant, 'ORDER');
        await until(async () => {
          const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
            sql<{ n: number }>`
              select count(*)::int as n from pg_locks
              where locktype = 'relation' and relation = 'exceptions.sources'::regclass and not granted
                and database = (select oid from pg_database where datname = current_database())`.execute(trx),
          );
          return rows[0]!.n === 2;
        }, 'both PUTs waiting to insert');
        await holder.query('commit');
      } finally {
        await holder.end();
      }
      await expectMadeThenReplaced(tenant, 'ORDER', await answers);
    },
  );
});

describe('the encryption of stored secrets', () => {
  const db = () => t.ctx.db.kysely as unknown as ExceptionsDb;
  const ctxWith = (secretsKey: string | undefined, secretsPreviousKeys: string[] = []) =>
    ({ ...t.ctx, config: { ...t.ctx.config, secretsKey, secretsPreviousKeys } }) as AppContext;
  const withKey = (secretsKey: string | undefined, previous: string[] = []) =>
    createSecretBox(ctxWith(secretsKey, previous), db());

  it("seals under the operator's key, else one derived from the database; a value opens only under its key and where it was stored", async () => {
    const hexKey = randomBytes(32).toString('hex');
    const operator = withKey(hexKey);
    const sealed = await operator.seal('the token', 'tenant-a|ORDER');
    expect(sealed).not.toContain('the token');
    expect(await withKey(hexKey).open(sealed, 'tenant-a|ORDER')).toBe('the token');
    expect(await withKey(Buffer.from(hexKey, 'hex').toString('base64')).open(sealed, 'tenant-a|ORDER')).toBe(
      'the token',
    );
    await expect(operator.open(sealed, 'tenant-b|ORDER')).rejects.toThrow(SecretUnreadableError);
    await expect(withKey(undefined).open(sealed, 'tenant-a|ORDER')).rejects.toThrow(/another key/);
    // Without MERCATO_SECRETS_KEY every process of the database derives the same key.
    const derived = await withKey(undefined).seal('x', 'aad');
    expect(await withKey(undefined).open(derived, 'aad')).toBe('x');
  });

  it('refuses a MERCATO_SECRETS_KEY that is not 32 bytes, without repeating it', () => {
    for (const bad of ['short', 'z'.repeat(64), Buffer.alloc(16).toString('base64')]) {
      expect(() => loadConfig({ MERCATO_SECRETS_KEY: bad })).toThrow(ConfigError);
      try {
        loadConfig({ MERCATO_SECRETS_KEY: bad });
      } catch (error) {
        expect((error as Error).message).not.toContain(bad);
      }
    }
  });

  it('opens what a previous key sealed while it is named, and seals only under the current one', async () => {
    const [k1, k2] = [randomBytes(32).toString('base64'), randomBytes(32).toString('hex')];
    const old = await withKey(k1).seal('the token', 'aad');
    const rotated = withKey(k2, [k1]);
    expect(await rotated.open(old, 'aad')).toBe('the token');
    expect(await rotated.isCurrent(old)).toBe(false);
    const fresh = await rotated.seal('the token', 'aad');
    expect(await rotated.isCurrent(fresh)).toBe(true);
    expect(await withKey(k2).open(fresh, 'aad')).toBe('the token');
    await expect(withKey(k1).open(fresh, 'aad')).rejects.toThrow(SecretUnreadableError);
    // Dropped from the configuration, the old key opens nothing, and the error says what to do.
    await expect(withKey(k2).open(old, 'aad')).rejects.toThrow(/MERCATO_SECRETS_KEY_PREVIOUS/);
    // Once MERCATO_SECRETS_KEY is set, what the derived key sealed before still opens.
    const derived = await withKey(undefined).seal('before', 'aad');
    expect(await withKey(k2).open(derived, 'aad')).toBe('before');
  });

  it('reseals every source under the current key, tenant by tenant, and names those no key opens', async () => {
    const rotating = await createOpsTenant(t, 'src-rotating');
    await putSource(t, rotating, 'ORDER', {
      baseUrl: 'http://127.0.0.1:9/o',
      credentials: { token: 'tok-o' },
    });
    await putSource(t, rotating, 'COLLECTION', { baseUrl: 'http://127.0.0.1:9/c' });
    const stored = async () =>
      Object.fromEntries(
        (
          await withTenant(db(), rotating.id, (trx) =>
            trx
              .selectFrom('exceptions.sources')
              .select(['interface_type', 'credentials_encrypted'])
              .orderBy('interface_type')
              .execute(),
          )
        ).map((r) => [r.interface_type, r.credentials_encrypted!]),
      );
    const opened = async (secretsKey: string, previous: string[] = []) => {
      const rows = await withTenant(db(), rotating.id, (trx) =>
        trx.selectFrom('exceptions.sources').selectAll().orderBy('interface_type').execute(),
      );
      return Promise.all(rows.map((row) => openSecrets(withKey(secretsKey, previous), row)));
    };
    const before = await stored();

    // Setting MERCATO_SECRETS_KEY where it was unset: the derived key's values move to it.
    const k1 = randomBytes(32).toString('base64');
    const first = await resealSecrets(ctxWith(k1), db());
    expect(first.resealed).toBeGreaterThanOrEqual(2);
    expect(first.unreadable.filter((u) => u.tenantId === rotating.id)).toEqual([]);
    const moved = await stored();
    for (const type of ['COLLECTION', 'ORDER']) {
      expect(moved[type]).not.toBe(before[type]);
      // The flag (credentials or none) stays, bound to the value as before.
      expect(moved[type]!.slice(0, 2)).toBe(before[type]!.slice(0, 2));
    }
    const secrets = await opened(k1);
    expect(secrets.map((x) => x.credentials)).toEqual([null, { token: 'tok-o' }]);
    expect(secrets.every((x) => x.signingSecret.startsWith('whsec_'))).toBe(true);

    // Again: nothing left to do for this tenant.
    const again = await resealSecrets(ctxWith(k1), db());
    expect(again.resealed).toBe(0);
    expect(await stored()).toEqual(moved);

    // Rotating k1 to k2, then dropping k1: the values open under k2 alone, with the same secrets.
    const k2 = randomBytes(32).toString('hex');
    expect((await resealSecrets(ctxWith(k2, [k1]), db())).resealed).toBeGreaterThanOrEqual(2);
    expect(await opened(k2)).toEqual(secrets);

    // A key nobody names any more: reported, left as it is.
    const k3 = randomBytes(32).toString('hex');
    const lost = await resealSecrets(ctxWith(k3), db());
    expect(lost.unreadable.filter((u) => u.tenantId === rotating.id)).toEqual([
      { tenantId: rotating.id, interfaceType: 'COLLECTION' },
      { tenantId: rotating.id, interfaceType: 'ORDER' },
    ]);
    expect(await opened(k2)).toEqual(secrets);
  });

  it('refuses a MERCATO_SECRETS_KEY_PREVIOUS key that is not 32 bytes, naming its place, never its value', () => {
    const good = randomBytes(32).toString('base64');
    expect(loadConfig({ MERCATO_SECRETS_KEY_PREVIOUS: ` ${good} ` }).secretsPreviousKeys).toEqual([good]);
    expect(() => loadConfig({ MERCATO_SECRETS_KEY_PREVIOUS: `${good},short` })).toThrow(/key 2 of 2/);
    try {
      loadConfig({ MERCATO_SECRETS_KEY_PREVIOUS: `${good},short` });
    } catch (error) {
      expect((error as Error).message).not.toContain(good);
      expect((error as Error).message).not.toContain('short');
    }
  });

  it('gives a source whose secrets no longer open a new signing secret when it is saved again', async () => {
    await putSource(t, shop, 'DISTRIBUTION', {
      baseUrl: 'http://127.0.0.1:9/d',
      credentials: { token: 'old-token' },
    });
    // As if MERCATO_SECRETS_KEY had changed: what is stored no longer opens.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update exceptions.sources set credentials_encrypted = 'c:v1.other.AAAA.AAAA.AAAA'
        where tenant_id = ${shop.id} and interface_type = 'DISTRIBUTION'`.execute(trx),
    );
    const saved = await send(t.app, 'PUT', path('DISTRIBUTION'), shop.admin, {
      baseUrl: 'http://127.0.0.1:9/d',
    });
    expect(saved.statusCode, saved.body).toBe(200);
    expect(saved.json()).toMatchObject({
      hasCredentials: false,
      signingSecret: expect.stringMatching(/^whsec_/),
    });
  });
});
