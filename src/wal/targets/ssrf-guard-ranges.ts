import { type Ip, inPrefix, ip, ipv4Text } from './ssrf-guard-ip.ts';

type Range = { net: Ip; prefix: number; label: string };
const range = (net: string, prefix: number, label: string): Range => ({ net: ip(net), prefix, label });

// IANA special-purpose IPv4 ranges that are not global (RFC 6890 and successors).
const IPV4_REFUSED: Range[] = [
  range('0.0.0.0', 8, 'this network'),
  range('10.0.0.0', 8, 'private'),
  range('100.64.0.0', 10, 'shared address space (CGNAT)'),
  range('127.0.0.0', 8, 'loopback'),
  range('169.254.0.0', 16, 'link-local'),
  range('172.16.0.0', 12, 'private'),
  range('192.0.0.0', 24, 'IETF protocol assignments'),
  range('192.0.2.0', 24, 'documentation'),
  range('192.88.99.0', 24, '6to4 relay anycast'),
  range('192.168.0.0', 16, 'private'),
  range('198.18.0.0', 15, 'benchmarking'),
  range('198.51.100.0', 24, 'documentation'),
  range('203.0.113.0', 24, 'documentation'),
  range('224.0.0.0', 4, 'multicast'),
  range('240.0.0.0', 4, 'reserved or broadcast'),
];

// Named for the message; beyond them, anything outside 2000::/3 (global unicast) is refused.
const IPV6_REFUSED: Range[] = [
  range('::', 128, 'unspecified'),
  range('::1', 128, 'loopback'),
  range('::', 96, 'IPv4-compatible'),
  range('64:ff9b:1::', 48, 'local-use NAT64'),
  range('fc00::', 7, 'unique local'),
  range('fe80::', 10, 'link-local'),
  range('fec0::', 10, 'site-local'),
  range('ff00::', 8, 'multicast'),
  range('2001:2::', 48, 'benchmarking'),
  range('2001:10::', 28, 'ORCHID'),
  range('2001:20::', 28, 'ORCHIDv2'),
  range('2001:db8::', 32, 'documentation'),
  range('3fff::', 20, 'documentation'),
];
const GLOBAL_UNICAST = range('2000::', 3, 'global unicast');

const MAPPED = ip('::ffff:0:0');
const NAT64 = ip('64:ff9b::');
const SIX_TO_FOUR = ip('2002::');
const TEREDO = ip('2001::');

const v4 = (value: bigint): Ip => ({ family: 4, value: value & 0xffff_ffffn });

/** The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stands for, else the address. */
export function unmapped(address: Ip): Ip {
  return inPrefix(address, MAPPED, 96) ? v4(address.value) : address;
}

/**
 * The IPv4 addresses an IPv6 address carries and reaches through: IPv4-mapped and NAT64
 * (64:ff9b::/96) in the last 32 bits, 6to4 (2002::/16) in bits 16-47, Teredo (2001::/32) its
 * server in bits 32-63 and its client, inverted, in the last 32 bits.
 */
export function embeddedIpv4(address: Ip): { kind: string; address: Ip }[] {
  if (address.family === 4) return [];
  const { value } = address;
  if (inPrefix(address, MAPPED, 96)) return [{ kind: 'IPv4-mapped', address: v4(value) }];
  if (inPrefix(address, NAT64, 96)) return [{ kind: 'NAT64', address: v4(value) }];
  if (inPrefix(address, SIX_TO_FOUR, 16)) return [{ kind: '6to4', address: v4(value >> 80n) }];
  if (inPrefix(address, TEREDO, 32)) {
    return [
      { kind: 'Teredo server', address: v4(value >> 64n) },
      { kind: 'Teredo client', address: v4(~value) },
    ];
  }
  return [];
}

function rangeOf(address: Ip): string | undefined {
  const table = address.family === 4 ? IPV4_REFUSED : IPV6_REFUSED;
  const hit = table.find((entry) => inPrefix(address, entry.net, entry.prefix));
  if (hit) return hit.label;
  if (address.family === 6 && !inPrefix(address, GLOBAL_UNICAST.net, GLOBAL_UNICAST.prefix)) {
    // IPv4-mapped and NAT64 addresses are judged by the IPv4 address they carry.
    return inPrefix(address, NAT64, 96) || inPrefix(address, MAPPED, 96) ? undefined : 'not global unicast';
  }
  return undefined;
}

/**
 * Why an address is not public (the name of its range, or of the range of the IPv4 address an
 * IPv6 form embeds), or undefined when it is a public address.
 */
export function refusedRange(address: Ip): string | undefined {
  const own = rangeOf(address);
  if (own) return own;
  for (const embedded of embeddedIpv4(address)) {
    const label = rangeOf(embedded.address);
    if (label) return `${embedded.kind} ${ipv4Text(embedded.address.value)}, ${label}`;
  }
  return undefined;
}

// Cloud instance metadata: AWS/GCP/Azure/OpenStack 169.254.169.254, AWS ECS 169.254.170.2,
// AWS IPv6 fd00:ec2::254, Azure's wire server 168.63.129.16 (a public address), Alibaba 100.100.100.200.
const METADATA_ADDRESSES = [
  '169.254.169.254',
  '169.254.170.2',
  '168.63.129.16',
  '100.100.100.200',
  'fd00:ec2::254',
].map(ip);
export const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata.goog', 'metadata']);

/** True for a cloud metadata address, or an IPv6 form that embeds one. */
export function isMetadataAddress(address: Ip): boolean {
  const candidates = [address, ...embeddedIpv4(address).map((embedded) => embedded.address)];
  return candidates.some((candidate) =>
    METADATA_ADDRESSES.some((meta) => meta.family === candidate.family && meta.value === candidate.value),
  );
}
