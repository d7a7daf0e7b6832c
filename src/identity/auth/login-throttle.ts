import type { Config } from '../../platform/config/index.ts';
import type { CounterStore } from '../../platform/http/index.ts';
import { AppError, clientKey } from '../../platform/http/index.ts';
import { sha256Hex } from '../tokens/index.ts';

/**
 * Brakes on password guessing, shared by every process when the counters live in Redis:
 * quickly per (account, IP), slowly per account from everywhere. An attacker guessing from one
 * place throttles only that place; the real user elsewhere still signs in.
 */
export type LoginThrottle = {
  /**
   * Counts one attempt against the (account, IP) pair before the password is checked, and
   * throws 429 LOGIN_THROTTLED (with Retry-After) once the pair is over its budget or the
   * account is over its all-IPs budget (unless this IP signed in to it before). Counting first
   * means a burst of parallel guesses cannot all slip past a check-then-count race. ip is the
   * caller's address (request.ip), counted by clientKey (an IPv6 caller by its /64); without it
   * all callers share one pair budget per account.
   */
  admit(tenantSlug: string, email: string, ip?: string): Promise<void>;
  /** A wrong password (or unknown account) counts against the account's all-IPs budget. */
  failed(tenantSlug: string, email: string): Promise<void>;
  /** A successful sign-in clears the pair's count and remembers the IP for the account. */
  succeeded(tenantSlug: string, email: string, ip?: string): Promise<void>;
};

/** The all-IPs budget of an account is this many times the per-(account, IP) one. */
export const ACCOUNT_BUDGET_FACTOR = 10;
/** How long an IP that signed in to an account stays exempt from the account's all-IPs brake. */
const KNOWN_IP_SECONDS = 30 * 86_400;

// Hashed so that the counter store (Redis) never holds email addresses or IPs.
const account = (tenantSlug: string, email: string) =>
  `${tenantSlug.toLowerCase()}\n${email.trim().toLowerCase()}`;
// An IPv6 caller is one /64 (clientKey): its 2^64 addresses share one pair budget and one exemption.
const pairKey = (tenantSlug: string, email: string, ip = '') =>
  `login-failures:${sha256Hex(`${account(tenantSlug, email)}\n${clientKey(ip)}`)}`;
const accountKey = (tenantSlug: string, email: string) =>
  `login-account-failures:${sha256Hex(account(tenantSlug, email))}`;
const knownKey = (tenantSlug: string, email: string, ip = '') =>
  `login-known-ip:${sha256Hex(`${account(tenantSlug, email)}\n${clientKey(ip)}`)}`;

const throttled = (detail: string, ttlSeconds: number) =>
  new AppError('LOGIN_THROTTLED', `${detail}; retry in ${ttlSeconds} s`, { retryAfterSeconds: ttlSeconds });

/**
 * Allows config.rateLimit.loginFailuresPerAccount attempts without a success per account (tenant
 * + email, whether or not it exists) and IP, and ACCOUNT_BUDGET_FACTOR times as many failures
 * per account from all IPs, each in a window of loginLockSeconds from its first count.
 */
export function createLoginThrottle(counters: CounterStore, limits: Config['rateLimit']): LoginThrottle {
  const perPair = limits.loginFailuresPerAccount;
  const perAccount = perPair * ACCOUNT_BUDGET_FACTOR;
  return {
    async admit(tenantSlug, email, ip) {
      const all = await counters.peek(accountKey(tenantSlug, email));
      if (all.count >= perAccount && (await counters.peek(knownKey(tenantSlug, email, ip))).count === 0) {
        throw throttled('too many failed sign-ins for this account', all.ttlSeconds);
      }
      const { count, ttlSeconds } = await counters.increment(
        pairKey(tenantSlug, email, ip),
        limits.loginLockSeconds,
      );
      if (count > perPair) throw throttled('too many failed sign-ins for this account from here', ttlSeconds);
    },
    async failed(tenantSlug, email) {
      await counters.increment(accountKey(tenantSlug, email), limits.loginLockSeconds);
    },
    async succeeded(tenantSlug, email, ip) {
      await counters.reset(pairKey(tenantSlug, email, ip));
      await counters.increment(knownKey(tenantSlug, email, ip), KNOWN_IP_SECONDS);
    },
  };
}
