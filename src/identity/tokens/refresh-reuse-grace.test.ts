import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import {
  createTestTenant,
  login,
  post,
  type TestTenant,
  type TokenPairBody,
} from '../auth/auth-test-fixtures.ts';
import { auth, send } from '../users/user-test-fixtures.ts';
import { sha256Hex } from './index.ts';

// The reuse grace lets a client's parallel refreshes of one token all succeed. It must not let
// whoever holds a just-rotated token fork the session: within the grace every replay answers
// the one successor the first rotation made, so a session never has more than one live token.
let t: TestApp;
let shop: TestTenant;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'grace-shop');
});
afterAll(() => t.close());

const refresh = (refreshToken: string) => post(t.app, '/api/v1/auth/refresh', { refreshToken });
const validate = async (token: string) => (await post(t.app, '/api/v1/auth/validate', { token })).json();
const profile = (accessToken: string) => send(t.app, 'GET', '/api/v1/users/profile', auth(accessToken));
const signIn = () => login(t.app, shop.slug, shop.adminEmail);
const familyOf = async (token: string) =>
  (
    await withSystem(t.identity.deps.db, (trx) =>
      trx
        .selectFrom('identity.refresh_tokens')
        .select('family_id')
        .where('token_hash', '=', sha256Hex(token))
        .executeTakeFirstOrThrow(),
    )
  ).family_id;
/** The session's refresh tokens that could still be traded (neither rotated nor revoked). */
const liveTokens = async (familyId: string) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx
      .selectFrom('identity.refresh_tokens')
      .select('token_hash')
      .where('family_id', '=', familyId)
      .where('rotated_at', 'is', null)
      .where('revoked_at', 'is', null)
      .execute(),
  );
// Moves a token's rotation into the past (the database clock decides the grace).
const rotatedSecondsAgo = (token: string, seconds: number) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx
      .updateTable('identity.refresh_tokens')
      .set({ rotated_at: sql<Date>`now() - make_interval(secs => ${seconds})` })
      .where('token_hash', '=', sha256Hex(token))
      .execute(),
  );
const pairsOf = (answers: { statusCode: number; json: <T>() => T }[]) => {
  expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 200));
  return answers.map((a) => a.json<TokenPairBody>());
};

describe('reusing a refresh token within the grace', () => {
  it('answers every replay with the same successor: the session never has more than one live refresh token', async () => {
    const stolen = await signIn();
    const family = await familyOf(stolen.refreshToken);
    const first = pairsOf([await refresh(stolen.refreshToken)]);
    const fanned = pairsOf(await Promise.all([1, 2, 3, 4, 5].map(() => refresh(stolen.refreshToken))));
    const later = pairsOf([await refresh(stolen.refreshToken), await refresh(stolen.refreshToken)]);
    const successors = new Set([...first, ...fanned, ...later].map((p) => p.refreshToken));
    expect(successors.size).toBe(1);
    expect(await liveTokens(family)).toHaveLength(1);
  });

  it('keeps a session to one live refresh token when the first refreshes race each other', async () => {
    const pair = await signIn();
    const family = await familyOf(pair.refreshToken);
    const answers = pairsOf(await Promise.all([1, 2, 3, 4].map(() => refresh(pair.refreshToken))));
    expect(new Set(answers.map((p) => p.refreshToken)).size).toBe(1);
    expect(await liveTokens(family)).toHaveLength(1);
  });

  it('keeps two tabs refreshing at once signed in, on one session', async () => {
    const first = await signIn();
    const tabA = (await refresh(first.refreshToken)).json<TokenPairBody>();
    await rotatedSecondsAgo(first.refreshToken, 9);
    const [tabB] = pairsOf([await refresh(first.refreshToken)]);
    expect(tabB!.refreshToken).toBe(tabA.refreshToken);
    for (const pair of [tabA, tabB!]) {
      expect((await profile(pair.accessToken)).statusCode).toBe(200);
      expect((await refresh(pair.refreshToken)).statusCode).toBe(200);
    }
    expect((await validate(tabB!.accessToken)).sessionId).toBe((await validate(tabA.accessToken)).sessionId);
  });

  it('revokes the whole session, successor included, for a replay after the grace', async () => {
    const stolen = await signIn();
    const [successor] = pairsOf([await refresh(stolen.refreshToken)]);
    pairsOf([await refresh(stolen.refreshToken)]);
    await rotatedSecondsAgo(stolen.refreshToken, 11);
    const replay = await refresh(stolen.refreshToken);
    expect(replay.statusCode).toBe(401);
    expect(replay.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(replay.json()).toMatchObject({ code: 'REFRESH_TOKEN_REUSED' });
    expect((await refresh(successor!.refreshToken)).json()).toMatchObject({ code: 'REFRESH_TOKEN_REUSED' });
    expect(await validate(successor!.accessToken)).toEqual({ active: false });
    expect((await profile(successor!.accessToken)).json()).toMatchObject({
      status: 401,
      code: 'INVALID_TOKEN',
    });
  });
});
