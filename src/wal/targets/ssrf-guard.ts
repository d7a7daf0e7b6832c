import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Thrown when a webhook would connect to an address the SSRF guard refuses. */
export class SsrfRefusedError extends Error {
  readonly address: string;
  readonly host: string;
  constructor(address: string, host: string) {
    super(`SSRF guard refused ${address} for host ${host}`);
    this.name = 'SsrfRefusedError';
    this.address = address;
    this.host = host;
  }
}

// Loopback, private, shared (CGNAT), link-local (incl. 169.254.169.254 cloud metadata),
// documentation, benchmarking, multicast and reserved ranges.
const IPV4_REFUSED: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];

// ::/96 covers ::, ::1 and the deprecated IPv4-compatible forms; 64:ff9b::/96 is NAT64,
// which can reach any IPv4 address including private ones.
const IPV6_REFUSED: [string, number][] = [
  ['::', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
];

const refused = new BlockList();
for (const [net, prefix] of IPV4_REFUSED) {
  refused.addSubnet(net, prefix, 'ipv4');
  refused.addSubnet(`::ffff:${net}`, 96 + prefix, 'ipv6');
}
for (const [net, prefix] of IPV6_REFUSED) refused.addSubnet(net, prefix, 'ipv6');

/** True when an IP address (v4 or v6, brackets allowed) must never be connected to by a webhook. */
export function isRefusedAddress(address: string): boolean {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(ip);
  if (family === 0) return true;
  return refused.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for net/tls connect options: resolves like dns.lookup, then refuses the connection
 * when any resolved address is refused. The socket connects only to the address checked here,
 * so DNS rebinding between a check and the connect cannot pass.
 */
export function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options }, (error, result, family) => {
    if (error) return callback(error, '');
    const addresses = Array.isArray(result) ? result.map((entry) => entry.address) : [result as string];
    const bad = addresses.find(isRefusedAddress);
    if (bad !== undefined) return callback(new SsrfRefusedError(bad, hostname), '');
    if (Array.isArray(result)) callback(null, result);
    else callback(null, result as string, family as number);
  });
}
