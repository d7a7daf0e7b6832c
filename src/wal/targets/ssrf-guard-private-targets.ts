import { ConfigError } from '../../platform/index.ts';
import { type Ip, inPrefix, maxPrefix, normalizeHost, parseIp } from './ssrf-guard-ip.ts';
import { unmapped } from './ssrf-guard-ranges.ts';

/** One destination the operator opened: a host name, or an address range; on one port or all. */
export type PrivateTarget =
  | { kind: 'host'; host: string; port: number | undefined }
  | { kind: 'network'; net: Ip; prefix: number; port: number | undefined };

const VARIABLE = 'MERCATO_WAL_PRIVATE_TARGETS';
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function invalid(entry: string, why: string): ConfigError {
  return new ConfigError(
    `${VARIABLE}: "${entry}" ${why}; each entry is a host name, an IP address or a CIDR, with an optional :port ([::1]:9000 for IPv6)`,
  );
}

function parsePort(entry: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : 0;
  if (port < 1 || port > 65_535) throw invalid(entry, `has port "${text}", not one from 1 to 65535`);
  return port;
}

function parseTarget(entry: string): PrivateTarget {
  let body: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  if (bracketed) {
    body = bracketed[1]!;
    portText = bracketed[2];
  } else if ((entry.match(/:/g) ?? []).length >= 2) {
    body = entry; // a bare IPv6 address or CIDR never has a port
  } else {
    const colon = entry.lastIndexOf(':');
    body = colon === -1 ? entry : entry.slice(0, colon);
    portText = colon === -1 ? undefined : entry.slice(colon + 1);
  }
  const port = parsePort(entry, portText);
  const slash = body.indexOf('/');
  if (slash !== -1) {
    const net = parseIp(body.slice(0, slash));
    const prefixText = body.slice(slash + 1);
    if (!net) throw invalid(entry, 'has a CIDR whose address is not an IP address');
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
    if (prefix < 0 || prefix > maxPrefix(net.family)) {
      throw invalid(entry, `has prefix length "${prefixText}", not one from 0 to ${maxPrefix(net.family)}`);
    }
    return { kind: 'network', net, prefix, port };
  }
  const address = parseIp(body);
  if (address) {
    const single = unmapped(address);
    return { kind: 'network', net: single, prefix: maxPrefix(single.family), port };
  }
  if (bracketed) throw invalid(entry, 'has brackets around something that is not an IPv6 address');
  const host = normalizeHost(body);
  const numeric = parseIp(host); // 127.1 and friends, as a URL reads them
  if (numeric) return { kind: 'network', net: numeric, prefix: maxPrefix(numeric.family), port };
  if (!HOSTNAME.test(host)) throw invalid(entry, 'is not a valid host name');
  return { kind: 'host', host, port };
}

/** Parses the operator's MERCATO_WAL_PRIVATE_TARGETS entries; throws a ConfigError naming a bad one. */
export function parsePrivateTargets(entries: readonly string[]): PrivateTarget[] {
  return entries
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map(parseTarget);
}

/**
 * True when the operator opened this connection: the URL's host name is an opened host, or the
 * address (IPv4-mapped taken as IPv4) lies in an opened range; on the entry's port when it has one.
 */
export function isOpened(
  targets: readonly PrivateTarget[],
  host: string,
  address: Ip,
  port: number,
): boolean {
  const target = unmapped(address);
  return targets.some((entry) => {
    if (entry.port !== undefined && entry.port !== port) return false;
    return entry.kind === 'host' ? entry.host === host : inPrefix(target, entry.net, entry.prefix);
  });
}
