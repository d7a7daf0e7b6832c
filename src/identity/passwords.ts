import { hash, verify } from '@node-rs/argon2';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, clientKey, validationFailed } from '../platform/http/index.ts';

// @node-rs/argon2's Algorithm is an ambient const enum, which type stripping cannot inline: 2 is Argon2id.
const ARGON2ID = 2;

// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB of memory, 2 iterations, 1 lane.
const PARAMS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/**
 * The argon2id hash of a new password. A password PASSWORD_RULES refuse (or that is not text) is
 * 400 VALIDATION_FAILED naming `pointer`: every hash a store is handed is of a password the API
 * would take, whoever made it (the stores take hashes, made before their transaction).
 */
export async function hashPassword(password: string, pointer = '/password'): Promise<string> {
  const problem = passwordProblem(password);
  if (problem !== undefined) {
    throw validationFailed([{ in: 'body', pointer, message: problem }]);
  }
  return hash(password, PARAMS);
}

// Verified against when the account does not exist, so an unknown email costs what a wrong password costs.
let dummyHash: Promise<string> | undefined;

/** True when password matches storedHash; with no stored hash it still spends the time of one check. */
export async function verifyPassword(storedHash: string | undefined, password: string): Promise<boolean> {
  if (storedHash === undefined) {
    dummyHash ??= hash('mercato-dummy-password-for-timing', PARAMS);
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  return verify(storedHash, password).catch(() => false);
}

/** What a new password must be (every route and command that sets one uses these). */
export const PASSWORD_RULES = { minLength: 12, maxLength: 128 } as const;

/**
 * Why password cannot be a new password, in words, or undefined when it can. Characters are
 * Unicode code points, as the routes' schemas (TypeBox minLength and maxLength) count them.
 */
export function passwordProblem(password: unknown): string | undefined {
  // A lone surrogate would be hashed as U+FFFD: two different passwords would match one hash.
  if (typeof password !== 'string' || !password.isWellFormed()) return 'must be text without lone surrogates';
  const length = [...password].length;
  if (length < PASSWORD_RULES.minLength) return `must be at least ${PASSWORD_RULES.minLength} characters`;
  if (length > PASSWORD_RULES.maxLength) return `must be at most ${PASSWORD_RULES.maxLength} characters`;
  return undefined;
}

/**
 * The route rate limit of a route that hashes or checks a password (argon2: 19 MiB and tens of
 * milliseconds of CPU each): perMinute (MERCATO_LOGIN_RATE_LIMIT) per client IP, counted in a
 * bucket of its own, as for logins. Without it an authenticated route would have the whole
 * authenticated budget, and one customer or tenant admin could keep every core hashing.
 */
export function passwordRouteRateLimit(perMinute: number, bucket: string) {
  return {
    max: perMinute,
    timeWindow: 60_000,
    keyGenerator: (request: FastifyRequest) => `${bucket}-ip:${clientKey(request.ip)}`,
  };
}

/**
 * A preHandler for a signed-in route that hashes or checks a password: passwordRouteRateLimit's
 * budget on top of the caller's usual one (which still counts the request, and counts a refused
 * credential per IP), checked once the caller and the body passed, just before the hashing.
 * Past it: 429 RATE_LIMITED with Retry-After, nothing hashed.
 */
export function passwordHashingBudget(app: FastifyInstance, perMinute: number, bucket: string) {
  const limiter = app.createRateLimit(passwordRouteRateLimit(perMinute, bucket));
  return async (request: FastifyRequest): Promise<void> => {
    const verdict = await limiter(request);
    if (!verdict.isAllowed && verdict.isExceeded) {
      throw new AppError(
        'RATE_LIMITED',
        `at most ${perMinute} password hashes a minute from one address; retry in ${verdict.ttlInSeconds} s`,
        { retryAfterSeconds: verdict.ttlInSeconds },
      );
    }
  };
}
