import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { normalizeHost, parseIp } from './ssrf-guard-ip.ts';
import { isOpened, type PrivateTarget, parsePrivateTargets } from './ssrf-guard-private-targets.ts';
import { isMetadataAddress, METADATA_HOSTS, refusedRange } from './ssrf-guard-ranges.ts';

/** Thrown when a webhook would connect to an address the SSRF guard refuses. */
export class SsrfRefusedError extends Error {
  readonly address: string;
  readonly host: string;
  constructor(address: string, host: string, reason: string) {
    super(`SSRF guard refused ${address} for host ${host}: ${reason}`);
    this.name = 'SsrfRefusedError';
    this.address = address;
    this.host = host;
  }
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for net/tls connect options (the signature of dns.lookup). */
export type GuardedLookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/**
 * Decides which addresses HTTP targets may connect to. Refused whatever a namespace says:
 * loopback, private, link-local, CGNAT, multicast, reserved and every other non-public range,
 * and IPv6 forms embedding such an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). The operator
 * opens some with MERCATO_WAL_PRIVATE_TARGETS; cloud metadata stays refused even then.
 */
export type SsrfGuard = {
  /** Why connecting to address (resolved from host) on port is refused; undefined when allowed. */
  refusal(host: string, address: string, port: number): string | undefined;
  /**
   * A dns.lookup for one connection to port: resolves every address of the host, keeps those
   * the guard allows and fails with SsrfRefusedError when none is left. The socket connects only
   * to an address checked here, so DNS rebinding between a check and the connect cannot pass.
   */
  lookupFor(port: number): GuardedLookup;
};

/** Builds the guard from the operator's MERCATO_WAL_PRIVATE_TARGETS; throws ConfigError on a bad entry. */
export function createSsrfGuard(privateTargets: readonly string[] = []): SsrfGuard {
  const opened: PrivateTarget[] = parsePrivateTargets(privateTargets);

  function refusal(host: string, address: string, port: number): string | undefined {
    const parsed = parseIp(address);
    if (!parsed) return 'not an IP address';
    const name = normalizeHost(host);
    if (isMetadataAddress(parsed) || METADATA_HOSTS.has(name)) return 'cloud metadata';
    if (isOpened(opened, name, parsed, port)) return undefined;
    const range = refusedRange(parsed);
    return range === undefined ? undefined : `${range} address, not opened by MERCATO_WAL_PRIVATE_TARGETS`;
  }

  function lookupFor(port: number): GuardedLookup {
    return (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(error, '');
        let refused: SsrfRefusedError | undefined;
        const allowed = addresses.filter((entry) => {
          const reason = refusal(hostname, entry.address, port);
          if (reason !== undefined) refused ??= new SsrfRefusedError(entry.address, hostname, reason);
          return reason === undefined;
        });
        if (allowed.length === 0) {
          return callback(refused ?? new SsrfRefusedError('nothing', hostname, 'no address resolved'), '');
        }
        if (options.all) return callback(null, allowed);
        callback(null, allowed[0]!.address, allowed[0]!.family);
      });
    };
  }

  return { refusal, lookupFor };
}
