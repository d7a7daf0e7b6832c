/**
 * The sale's customers, signed in without a login each (100,000 argon2 logins would take longer
 * than the sale): users, their default shipping addresses and one session each (a refresh-token
 * row whose family id is the session id) inserted in three set-based statements on the bench's
 * database, as src/flash-sales/flash-test-fixtures.ts `bulkCustomers` does, and an access token
 * per customer signed with the server's own key, read from `platform.signing_keys` (where Mercato
 * keeps it, src/identity/tokens/signing-keys.ts). The tokens are checked like any other: signature,
 * claims, and the session still standing.
 */
import { randomUUID } from 'node:crypto';
import { importPKCS8, SignJWT } from 'jose';
import pg from 'pg';
import { databaseUrl } from '../commerce/setup.ts';

/** A signed-in customer: the user id and a Bearer access token. */
export type Buyer = { id: string; token: string };

/** Mercato's defaults (MERCATO_JWT_ISSUER, MERCATO_JWT_AUDIENCE), which the bench does not change. */
export const JWT_ISSUER = 'mercato';
export const JWT_AUDIENCE = 'mercato-api';
/** The tokens outlive any run (the server's own access tokens live 15 minutes). */
const TOKEN_TTL = '4h';

/**
 * `n` customers of the tenant, each with a default shipping address in Berlin and a session,
 * and their access tokens; with the public JWK of the key that signed them (the textbook peer
 * verifies with it).
 */
export async function createCustomers(
  tenant: { id: string; slug: string },
  n: number,
): Promise<{ buyers: Buyer[]; publicJwk: string }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let ids: string[];
  let stored: { kid: string; private_pem: string; public_jwk: Record<string, unknown> };
  try {
    await client.query('begin');
    const users = await client.query<{ id: string }>(
      `insert into identity.users (id, tenant_id, email, password_hash, name, role)
       select gen_random_uuid(), $1::uuid, 'flash-buyer-' || g || '@bench.test', 'not-a-password-hash',
         'Flash buyer ' || g, 'customer'
       from generate_series(1, $2::int) g
       returning id`,
      [tenant.id, n],
    );
    ids = users.rows.map((r) => r.id);
    await client.query(
      `insert into identity.addresses (id, tenant_id, user_id, type, recipient, line1, city, postal_code, country, is_default)
       select gen_random_uuid(), $1::uuid, u, 'SHIPPING', 'Erika Muster', 'Unter den Linden 1', 'Berlin', '10117', 'DE', true
       from unnest($2::uuid[]) u`,
      [tenant.id, ids],
    );
    // One session per customer: the family id is the session id the token names (here the user's id).
    await client.query(
      `insert into identity.refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at)
       select gen_random_uuid(), $1::uuid, u, u, encode(sha256(convert_to(u::text || random()::text, 'UTF8')), 'hex'),
         now() + interval '1 day'
       from unnest($2::uuid[]) u`,
      [tenant.id, ids],
    );
    await client.query('commit');
    await client.query('analyze identity.users, identity.addresses, identity.refresh_tokens');
    const keys = await client.query<typeof stored>(
      `select kid, private_pem, public_jwk from platform.signing_keys
       where retired_at is null order by created_at desc, kid desc limit 1`,
    );
    if (!keys.rows[0])
      throw new Error('platform.signing_keys holds no key: has Mercato started on this database?');
    stored = keys.rows[0];
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
  const key = await importPKCS8(stored.private_pem, 'EdDSA');
  const sign = (id: string) =>
    new SignJWT({ tid: tenant.id, tenant: tenant.slug, role: 'customer', sid: id })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: stored.kid })
      .setIssuer(JWT_ISSUER)
      .setAudience(JWT_AUDIENCE)
      .setSubject(id)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(TOKEN_TTL)
      .sign(key);
  const buyers: Buyer[] = [];
  for (let i = 0; i < ids.length; i += 1000) {
    const slice = ids.slice(i, i + 1000);
    const tokens = await Promise.all(slice.map(sign));
    for (const [k, id] of slice.entries()) buyers.push({ id, token: tokens[k]! });
  }
  const publicJwk = JSON.stringify({ ...stored.public_jwk, kid: stored.kid, alg: 'EdDSA' });
  return { buyers, publicJwk };
}
