import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { normalizeHost, parseIp } from './ssrf-guard-ip.ts';
import { isOpened, type PrivateTarget, parsePrivateTargets } from './ssrf-guard-private-targets.ts';
import { isMetadataAddress, METADATA_HOSTS, refusedRange } from './ssrf-guard-ranges.ts';

/** What a tenant is told when the guard refuses a destination: never the address a name resolved to. */
export const REFUSED_MESSAGE = 'destination refused: not a public address';
/** What a tenant is told when a webhook host does not resolve: never the resolver's own error. */
export const UNRESOLVED_MESSAGE = 'could not resolve host';

/**
 * Thrown when a webhook would connect to an address the SSRF guard refuses. Its message is the
 * generic REFUSED_MESSAGE, stored where the tenant reads it (lastError, attempt history): naming
 * the address would tell a tenant which internal names resolve, and to what. `detail` (address,
 * host, reason) is for the operator's log.
 */
export class SsrfRefusedError extends Error {
  readonly address: string;
  readonly host: string;
  readonly reason: string;
  constructor(address: string, host: string, reason: string) {
    super(REFUSED_MESSAGE);
    this.name = 'SsrfRefusedError';
    this.address = address;
    this.host = host;
    this.reason = reason;
  }
  /** For the operator's log only. */
  get detail(): string {
    return `SSRF guard refused ${this.address} for host ${this.host}: ${this.reason}`;
  }
}

/** Thrown when a webhook host does not resolve; the message is UNRESOLVED_MESSAGE, `cause` the resolver's error (for the log). */
export class HostLookupError extends Error {
  readonly host: string;
  constructor(host: string, cause: Error) {
    super(UNRESOLVED_MESSAGE, { cause });
    this.name = 'HostLookupError';
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
   * the guard allows and fails with SsrfRefusedError when none is left (HostLookupError when the
   * host does not resolve). The socket connects only to an address checked here, so DNS
   * rebinding between a check and the connect cannot pass.
   */
  lookupFor(port: number): GuardedLookup;
};

/** How a host is resolved (dns.lookup with `all: true`); a parameter so a failing resolver can be tested. */
export type Resolve = (
  hostname: string,
  options: LookupOptions & { all: true },
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * Builds the guard from the operator's MERCATO_WAL_PRIVATE_TARGETS; throws ConfigError on a bad
 * entry. resolve is dns.lookup unless a test gives another.
 */
export function createSsrfGuard(
  privateTargets: readonly string[] = [],
  resolve: Resolve = dnsLookup,
): SsrfGuard {
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
      resolve(hostname, { ...options, all: true }, (error, addresses) => {
        if (error) return callback(new HostLookupError(hostname, error), '');
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
