import type { OpenNamespace, OpenTarget } from './namespace.ts';
import { isSensitiveHeader } from './sealed-targets.ts';

// What answers and the audit log show of an HTTP target's secret and credential headers, and how
// a masked value sent back on update is told from a new one.

/** `whsec_…` and the last 4 characters: enough to tell secrets apart, never enough to use one. */
export function maskSecret(secret: string): string {
  return `whsec_…${secret.slice(-4)}`;
}

/**
 * A credential header's value masked: `…` and its last 4 characters when it has at least 16
 * (`…` alone when shorter). `…` is no valid header value, so a masked one sent back is never
 * taken for a new value: it keeps the stored one.
 */
export function maskHeaderValue(value: string): string {
  return value.length >= 16 ? `…${value.slice(-4)}` : '…';
}

/** A target's headers with the values of credential headers (isSensitiveHeader) masked. */
function maskHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [
      name,
      isSensitiveHeader(name) ? maskHeaderValue(value) : value,
    ]),
  );
}

/** A copy of the targets with every HTTP secret and credential header value masked. */
export function maskTargets(targets: OpenTarget[]): OpenTarget[] {
  return targets.map((target) =>
    target.type === 'http'
      ? {
          ...target,
          secret: maskSecret(target.secret),
          ...(target.headers ? { headers: maskHeaders(target.headers) } : {}),
        }
      : target,
  );
}

/** A namespace as the API answers it: secrets and credential headers masked. */
export function namespaceView(namespace: OpenNamespace): OpenNamespace {
  return { ...namespace, targets: maskTargets(namespace.targets) };
}

/**
 * The headers as sent, a credential header's masked value (maskHeaderValue) replaced by the
 * stored target's value of that header (its name matched case-insensitively).
 */
export function keepMaskedHeaders(
  headers: Record<string, unknown>,
  kept: Record<string, string> | undefined,
): Record<string, unknown> {
  if (!kept) return headers;
  const byName = new Map(Object.entries(kept).map(([name, value]) => [name.toLowerCase(), value]));
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => {
      const stored = isSensitiveHeader(name) ? byName.get(name.toLowerCase()) : undefined;
      // Empty: the stored value does not open (sealed under another key): it must be sent again.
      const keep = stored !== undefined && stored !== '' && value === maskHeaderValue(stored);
      return [name, keep ? stored : value];
    }),
  );
}
