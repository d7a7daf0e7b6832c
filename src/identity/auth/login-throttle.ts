import { createHmac } from 'node:crypto';
import type { Config } from '../../platform/config/index.ts';
import type { CounterStore } from '../../platform/http/index.ts';
import { AppError, clientKey } from '../../platform/http/index.ts';

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

/**
 * The HKDF info of the deployment key the counters are named under (deriveServerKey): a key of
 * its own, never the bytes that encrypt stored secrets.
 */
export const LOGIN_THROTTLE_KEY_INFO = 'mercato/login-throttle/v1';

const account = (tenantSlug: string, email: string) =>
  `${tenantSlug.toLowerCase()}\n${email.trim().toLowerCase()}`;

/**
 * The counters' names: HMAC-SHA256 under the deployment's key, so the counter store (Redis) holds
 * neither email addresses nor IPs, and whoever reads it cannot test guesses (an email and all 2^32
 * IPv4 addresses) against a name without the key. An IPv6 caller is one /64 (clientKey): its
 * 2^64 addresses share one pair budget and one exemption.
 */
function counterKeys(key: Buffer) {
  const mac = (text: string) => createHmac('sha256', key).update(text).digest('hex');
  const pair = (tenantSlug: string, email: string, ip = '') =>
    mac(`${account(tenantSlug, email)}\n${clientKey(ip)}`);
  return {
    pairKey: (tenantSlug: string, email: string, ip?: string) =>
      `login-failures:${pair(tenantSlug, email, ip)}`,
    accountKey: (tenantSlug: string, email: string) =>
      `login-account-failures:${mac(account(tenantSlug, email))}`,
    knownKey: (tenantSlug: string, email: string, ip?: string) =>
      `login-known-ip:${pair(tenantSlug, email, ip)}`,
  };
}

const throttled = (detail: string, ttlSeconds: number) =>
  new AppError('LOGIN_THROTTLED', `${detail}; retry in ${ttlSeconds} s`, { retryAfterSeconds: ttlSeconds });

/**
 * Allows config.rateLimit.loginFailuresPerAccount attempts without a success per account (tenant
 * + email, whether or not it exists) and IP, and ACCOUNT_BUDGET_FACTOR times as many failures
 * per account from all IPs, each in a window of loginLockSeconds from its first count. `key`
 * names the counters (LOGIN_THROTTLE_KEY_INFO): throttles built with the same key share counts,
 * so every process of a deployment must derive the same one.
 */
export function createLoginThrottle(
  counters: CounterStore,
  limits: Config['rateLimit'],
  key: Buffer,
): LoginThrottle {
  const { pairKey, accountKey, knownKey } = counterKeys(key);
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
