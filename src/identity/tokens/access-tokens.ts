import { type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { uuidv7 } from 'uuidv7';
import type { Config } from '../../platform/config/index.ts';
import { AppError, type Principal, ROLES, type Role } from '../../platform/http/index.ts';
import { ACCESS_TOKEN_ALG, type SigningKeys } from './signing-keys.ts';

/** RFC 9068: the media type of JWT access tokens, in the `typ` header. */
export const ACCESS_TOKEN_TYP = 'at+jwt';
const CLOCK_TOLERANCE_SECONDS = 5;

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/** A verified access token: who it names and when it was issued and expires (epoch seconds). */
export type VerifiedAccessToken = { principal: UserPrincipal; issuedAt: number; expiresAt: number };

type AccessClaims = JWTPayload & { tid?: unknown; tenant?: unknown; role?: unknown; sid?: unknown };

/** Signs an access token for the principal, valid config.jwt.accessTtlSeconds. */
export async function signAccessToken(
  keys: SigningKeys,
  jwt: Config['jwt'],
  principal: Omit<UserPrincipal, 'kind'>,
): Promise<string> {
  return new SignJWT({
    tid: principal.tenantId,
    tenant: principal.tenantSlug,
    role: principal.role,
    sid: principal.sessionId,
  })
    .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid: keys.signing.kid })
    .setIssuer(jwt.issuer)
    .setAudience(jwt.audience)
    .setSubject(principal.userId)
    .setJti(uuidv7())
    .setIssuedAt()
    .setExpirationTime(`${jwt.accessTtlSeconds}s`)
    .sign(keys.signing.key);
}

const isString = (value: unknown): value is string => typeof value === 'string' && value !== '';

/**
 * Verifies signature (EdDSA only, key chosen by kid among our own), typ, iss, aud, exp and
 * the claims a principal needs; anything else is AppError INVALID_TOKEN. No database access.
 */
export async function verifyAccessToken(
  keys: SigningKeys,
  jwt: Config['jwt'],
  token: string,
): Promise<VerifiedAccessToken> {
  let payload: AccessClaims;
  try {
    ({ payload } = await jwtVerify<AccessClaims>(
      token,
      (header) => {
        const key = header.kid === undefined ? undefined : keys.verifying.get(header.kid);
        if (!key) throw new Error('unknown kid');
        return key;
      },
      {
        algorithms: [ACCESS_TOKEN_ALG],
        typ: ACCESS_TOKEN_TYP,
        issuer: jwt.issuer,
        audience: jwt.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      },
    ));
  } catch (error) {
    throw new AppError('INVALID_TOKEN', 'access token is invalid or expired', {}, { cause: error });
  }
  const { sub, tid, tenant, role, sid, iat, exp } = payload;
  if (
    !isString(sub) ||
    !isString(tid) ||
    !isString(tenant) ||
    !isString(sid) ||
    !ROLES.includes(role as Role) ||
    typeof iat !== 'number' ||
    typeof exp !== 'number'
  ) {
    throw new AppError('INVALID_TOKEN', 'access token is missing required claims');
  }
  return {
    // Frozen: the verifier below hands the same object to every request presenting this token.
    principal: Object.freeze({
      kind: 'user',
      tenantId: tid,
      tenantSlug: tenant,
      userId: sub,
      role: role as Role,
      sessionId: sid,
    } as const),
    issuedAt: iat,
    expiresAt: exp,
  };
}

/**
 * verifyAccessToken behind a bounded memo of tokens already verified. A client sends the same
 * access token for its whole lifetime, and an Ed25519 verification costs far more than a
 * request otherwise does; the memo is keyed by the exact token string and still enforces exp.
 * Only successes are kept; when full, the oldest entry goes.
 */
export function createAccessTokenVerifier(
  keys: SigningKeys,
  jwt: Config['jwt'],
  maxEntries = 10_000,
): (token: string) => Promise<VerifiedAccessToken> {
  const verified = new Map<string, VerifiedAccessToken>();
  return async (token) => {
    const hit = verified.get(token);
    if (hit) {
      if (hit.expiresAt + CLOCK_TOLERANCE_SECONDS > Date.now() / 1000) return hit;
      verified.delete(token);
      throw new AppError('INVALID_TOKEN', 'access token is invalid or expired');
    }
    const result = await verifyAccessToken(keys, jwt, token);
    if (verified.size >= maxEntries) verified.delete(verified.keys().next().value!);
    verified.set(token, result);
    return result;
  };
}
