import { isIP } from 'node:net';
import { ConfigError } from './config-error.ts';

const VARIABLE = 'MERCATO_TRUSTED_PROXIES';

/**
 * MERCATO_TRUSTED_PROXIES: the reverse proxies (IP addresses or CIDRs) whose X-Forwarded-For
 * Mercato believes, so that per-address limits and records count the shopper, not the proxy.
 * Nothing is trusted by default: without a proxy in front, any caller could write the header
 * and pick a fresh address per request. `true` (trust everyone) and host names are refused.
 */
export function trustedProxies(raw: string | undefined): string[] {
  const entries = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return entries.map((entry) => {
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIP(address);
    const prefixText = slash === -1 ? undefined : entry.slice(slash + 1);
    const max = family === 6 ? 128 : 32;
    const prefixOk = prefixText === undefined || (/^\d{1,3}$/.test(prefixText) && Number(prefixText) <= max);
    if (family === 0 || !prefixOk) {
      throw new ConfigError(
        `${VARIABLE} must list IP addresses or CIDRs of your reverse proxies (e.g. 10.0.0.0/8,::1), got "${entry}"`,
      );
    }
    return prefixText === undefined
      ? address.toLowerCase()
      : `${address.toLowerCase()}/${Number(prefixText)}`;
  });
}
