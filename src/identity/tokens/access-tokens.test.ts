import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JWK, jwtVerify, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, getWith, login, type TestTenant } from '../auth/auth-test-fixtures.ts';

const PROFILE = '/api/v1/users/profile';
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('access tokens', () => {
  let t: TestApp;
  let shop: TestTenant;
  let kid: string;
  let claims: Record<string, unknown>;
  // The server signs with this key (MERCATO_JWT_PRIVATE_KEY), so tests can forge near-valid tokens.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const foreign = generateKeyPairSync('ed25519').privateKey;
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();

  const sign = (key: Parameters<SignJWT['sign']>[0], header: Record<string, unknown> = {}, overrides = {}) =>
    new SignJWT({ ...claims, ...overrides })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid, ...header } as { alg: string })
      .sign(key);

  const profileWith = (token: string) => getWith(t.app, PROFILE, { authorization: `Bearer ${token}` });

  beforeAll(async () => {
    t = await startTestApp({ MERCATO_JWT_PRIVATE_KEY: pem });
    shop = await createTestTenant(t, 'jwt-shop');
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    kid = decodeProtectedHeader(pair.accessToken).kid!;
    const now = Math.floor(Date.now() / 1000);
    claims = {
      iss: 'mercato',
      aud: 'mercato-api',
      sub: shop.adminId,
      tid: shop.id,
      tenant: shop.slug,
      role: 'admin',
      sid: decodeJwt(pair.accessToken).sid,
      jti: 'forged',
      iat: now,
      exp: now + 600,
    };
  });
  afterAll(() => t.close());

  it('accepts an issued token on the profile route', async () => {
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    const response = await profileWith(pair.accessToken);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ id: shop.adminId, role: 'admin' });
  });

  it('accepts a token forged here with the server key, so each refusal below tests one flaw', async () => {
    expect((await profileWith(await sign(privateKey))).statusCode).toBe(200);
  });

  const jwkBytes = async () => {
    const { keys } = (await t.app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: JWK[] }>();
    return new TextEncoder().encode(JSON.stringify(keys[0]));
  };
  const attacks: [string, () => Promise<string> | string][] = [
    ['alg none', () => `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${b64(claims)}.`],
    ['HS256 keyed with the public JWK', async () => sign(await jwkBytes(), { alg: 'HS256' })],
    [
      'HS256 keyed with the public key PEM',
      () => sign(new TextEncoder().encode(publicPem), { alg: 'HS256' }),
    ],
    ['a foreign Ed25519 key claiming the real kid', () => sign(foreign)],
    ['a foreign Ed25519 key with its own kid', () => sign(foreign, { kid: 'attacker-key' })],
    ['a foreign Ed25519 key and no kid', () => sign(foreign, { kid: undefined })],
    ['the real key but no kid', () => sign(privateKey, { kid: undefined })],
    [
      'an expired token',
      () => sign(privateKey, {}, { iat: Number(claims['iat']) - 3600, exp: Number(claims['iat']) - 60 }),
    ],
    ['a wrong audience', () => sign(privateKey, {}, { aud: 'someone-else' })],
    ['a wrong issuer', () => sign(privateKey, {}, { iss: 'https://evil.example' })],
    ['a wrong typ (plain JWT)', () => sign(privateKey, { typ: 'JWT' })],
    ['an unknown role', () => sign(privateKey, {}, { role: 'superuser' })],
    ['no tenant claim', () => sign(privateKey, {}, { tid: undefined })],
    [
      'a tampered payload',
      async () => {
        const [header, , signature] = (await sign(privateKey)).split('.');
        return `${header}.${b64({ ...claims, role: 'admin', sub: 'someone-else' })}.${signature}`;
      },
    ],
    ['garbage', () => 'not.a.jwt'],
    [
      'the real key for a session that never existed',
      () => sign(privateKey, {}, { sid: '01900000-0000-7000-8000-000000000000' }),
    ],
    ['the real key naming a user who does not exist', () => sign(privateKey, {}, { sub: shop.id })],
    [
      'the real key moving the user into the platform tenant',
      () => sign(privateKey, {}, { tid: '00000000-0000-7000-8000-000000000001', tenant: 'platform' }),
    ],
  ];

  it.each(attacks)('refuses %s with 401 problem+json', async (_name, forge) => {
    for (const url of [PROFILE, '/api/v1/api-keys']) {
      const response = await getWith(t.app, url, { authorization: `Bearer ${await forge()}` });
      expect(response.statusCode).toBe(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
    }
  });

  it('keeps refusing a token once it expires, even after it was verified and remembered', async () => {
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    const { tokens } = t.identity.deps;
    await expect(tokens.authenticate(pair.accessToken)).resolves.toMatchObject({ userId: shop.adminId });
    expect((await profileWith(pair.accessToken)).statusCode).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 901_000 + 5_000);
      await expect(tokens.authenticate(pair.accessToken)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
      expect((await profileWith(pair.accessToken)).statusCode).toBe(401);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a token sent without the Bearer scheme', async () => {
    const token = await sign(privateKey);
    for (const authorization of [token, `Basic ${token}`, `Token ${token}`]) {
      const response = await getWith(t.app, PROFILE, { authorization });
      expect(response.statusCode).toBe(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    }
  });

  it('asks for a credential when none is sent', async () => {
    const response = await t.app.inject({ url: PROFILE });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('publishes the signing key at /.well-known/jwks.json, enough to verify a token independently', async () => {
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    const response = await t.app.inject({ url: '/.well-known/jwks.json' });
    expect(response.statusCode).toBe(200);
    const jwks = response.json<{ keys: JWK[] }>();
    expect(jwks.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(pair.accessToken).kid);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
    expect(jwks.keys[0]!.x).toBe(publicKey.export({ format: 'jwk' }).x);
    const { payload, protectedHeader } = await jwtVerify(pair.accessToken, createLocalJWKSet(jwks), {
      issuer: 'mercato',
      audience: 'mercato-api',
      typ: 'at+jwt',
      algorithms: ['EdDSA'],
    });
    expect(protectedHeader.typ).toBe('at+jwt');
    expect(payload).toMatchObject({ sub: shop.adminId, tid: shop.id, tenant: shop.slug, role: 'admin' });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(typeof payload['sid']).toBe('string');
    expect(typeof payload.jti).toBe('string');
  });
});
