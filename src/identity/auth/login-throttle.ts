import type { Config } from '../../platform/config/index.ts';
import type { CounterStore } from '../../platform/http/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { sha256Hex } from '../tokens/index.ts';

/** Per-account brake on password guessing, shared by every process when the counters live in Redis. */
export type LoginThrottle = {
  /**
   * Counts one attempt against the account before the password is checked, and throws 429
   * LOGIN_THROTTLED (with Retry-After) once the account is over its budget. Counting first
   * means a burst of parallel guesses cannot all slip past a check-then-count race.
   */
  admit(tenantSlug: string, email: string): Promise<void>;
  /** A successful sign-in clears the account's count. */
  succeeded(tenantSlug: string, email: string): Promise<void>;
};

// Hashed so that the counter store (Redis) never holds email addresses.
const accountKey = (tenantSlug: string, email: string) =>
  `login-failures:${sha256Hex(`${tenantSlug.toLowerCase()}\n${email.trim().toLowerCase()}`)}`;

/**
 * Allows config.rateLimit.loginFailuresPerAccount attempts without a success per account (tenant
 * + email, whether or not it exists) in a window of loginLockSeconds from the first failure.
 */
export function createLoginThrottle(counters: CounterStore, limits: Config['rateLimit']): LoginThrottle {
  return {
    async admit(tenantSlug, email) {
      const { count, ttlSeconds } = await counters.increment(
        accountKey(tenantSlug, email),
        limits.loginLockSeconds,
      );
      if (count > limits.loginFailuresPerAccount) {
        throw new AppError(
          'LOGIN_THROTTLED',
          `too many failed sign-ins for this account; retry in ${ttlSeconds} s`,
          {
            retryAfterSeconds: ttlSeconds,
          },
        );
      }
    },
    async succeeded(tenantSlug, email) {
      await counters.reset(accountKey(tenantSlug, email));
    },
  };
}
