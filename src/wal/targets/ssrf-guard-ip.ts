import { isIP } from 'node:net';

/** An IP address as a number: 32 bits for IPv4, 128 for IPv6. */
export type Ip = { family: 4 | 6; value: bigint };

const bits = (family: 4 | 6): bigint => (family === 4 ? 32n : 128n);

function v4Value(text: string): bigint {
  return text.split('.').reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

function v6Value(text: string): bigint {
  let address = text;
  // A dotted IPv4 tail (::ffff:1.2.3.4) becomes its two 16-bit words.
  if (address.includes('.')) {
    const colon = address.lastIndexOf(':');
    const v4 = Number(v4Value(address.slice(colon + 1)));
    address = `${address.slice(0, colon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [left = '', right] = address.split('::');
  const head = left === '' ? [] : left.split(':');
  const tail = right === undefined || right === '' ? [] : right.split(':');
  const words = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return words.reduce((value, word) => (value << 16n) | BigInt(Number.parseInt(word, 16)), 0n);
}

/** Parses an IPv4 or IPv6 address (brackets and an IPv6 zone id allowed); undefined when it is none. */
export function parseIp(text: string): Ip | undefined {
  let address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = address.indexOf('%');
  if (zone !== -1 && address.includes(':')) address = address.slice(0, zone);
  const family = isIP(address);
  if (family === 4) return { family: 4, value: v4Value(address) };
  if (family === 6) return { family: 6, value: v6Value(address) };
  return undefined;
}

/** The IPv4 address value as dotted text. */
export function ipv4Text(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

/** An IP from its family and text; throws on text that is not one (for constant tables only). */
export function ip(text: string): Ip {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`not an IP address: ${text}`);
  return parsed;
}

/** True when address lies in net/prefix (same family only). */
export function inPrefix(address: Ip, net: Ip, prefix: number): boolean {
  if (address.family !== net.family) return false;
  const shift = bits(net.family) - BigInt(prefix);
  return address.value >> shift === net.value >> shift;
}

/** The longest prefix a family allows: 32 or 128. */
export function maxPrefix(family: 4 | 6): number {
  return Number(bits(family));
}

/**
 * A host as the WHATWG URL parser writes it, for comparisons: lower case, no trailing dot, no
 * brackets around IPv6, IPv6 compressed (`::ffff:7f00:1`), IPv4 shorthands expanded (`127.1`).
 */
export function normalizeHost(host: string): string {
  const bare = host.trim().replace(/^\[(.*)\]$/, '$1');
  try {
    const hostname = new URL(`http://${bare.includes(':') ? `[${bare}]` : bare}/`).hostname;
    return hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  } catch {
    return bare.toLowerCase().replace(/\.$/, '');
  }
}
