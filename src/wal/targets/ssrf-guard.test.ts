import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../platform/index.ts';
import {
  createSsrfGuard,
  HostLookupError,
  REFUSED_MESSAGE,
  type SsrfGuard,
  SsrfRefusedError,
  UNRESOLVED_MESSAGE,
} from './ssrf-guard.ts';

const closed = createSsrfGuard();
const refusal = (guard: SsrfGuard, address: string, port = 443, host = address) =>
  guard.refusal(host, address, port);

function lookup(guard: SsrfGuard, host: string, port: number, all: boolean) {
  return new Promise<{ error: Error | null; address: string | LookupAddress[] }>((resolve) =>
    guard.lookupFor(port)(host, { all }, (error, address) => resolve({ error, address })),
  );
}

describe('SSRF guard: what is refused whatever a namespace says', () => {
  it.each([
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['0.0.0.0', /this network/],
    ['0.1.2.3', /this network/],
    ['10.0.0.1', /private/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.168.0.10', /private/],
    ['100.64.0.1', /CGNAT/],
    ['100.127.255.255', /CGNAT/],
    ['169.254.1.1', /link-local/],
    ['224.0.0.1', /multicast/],
    ['239.255.255.250', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /broadcast/],
    ['::', /unspecified/],
    ['::1', /loopback/],
    ['[::1]', /loopback/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['::ffff:127.0.0.1', /IPv4-mapped 127\.0\.0\.1, loopback/],
    ['::ffff:7f00:1', /IPv4-mapped 127\.0\.0\.1, loopback/],
    ['::ffff:10.1.2.3', /private/],
    ['fc00::1', /unique local/],
    ['fd12:3456::1', /unique local/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /link-local/],
    ['ff02::1', /multicast/],
    ['64:ff9b::a00:1', /NAT64 10\.0\.0\.1, private/],
    ['64:ff9b::7f00:1', /NAT64 127\.0\.0\.1, loopback/],
    ['64:ff9b:1::8.8.8.8', /local-use NAT64/],
    ['2002:7f00:1::1', /6to4 127\.0\.0\.1, loopback/],
    ['2002:a9fe:101::', /6to4 169\.254\.1\.1, link-local/],
    // Teredo: server 65.54.227.120, client 127.0.0.1 stored inverted (80ff:fffe)
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', /Teredo client 127\.0\.0\.1, loopback/],
    ['2001:0:a00:1:8000:63bf:f7f7:f7f7', /Teredo server 10\.0\.0\.1, private/],
    ['2001:db8::1', /documentation/],
    ['100::1', /not global unicast/],
    ['not-an-ip', /not an IP address/],
  ])('refuses %s', (address, reason) => {
    expect(refusal(closed, address)).toMatch(reason);
  });

  it.each([
    '93.184.215.14',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
  ])('allows the public address %s', (address) => {
    expect(refusal(closed, address)).toBeUndefined();
  });

  it.each([
    '169.254.169.254',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
    '64:ff9b::a9fe:a9fe',
    '2002:a9fe:a9fe::1',
    'fd00:ec2::254',
    '169.254.170.2',
    '168.63.129.16',
    '100.100.100.200',
  ])('refuses the cloud metadata address %s even when the operator opened every address', (address) => {
    const everything = createSsrfGuard(['0.0.0.0/0', '::/0', '169.254.169.254']);
    expect(refusal(everything, address)).toBe('cloud metadata');
  });

  it('refuses the metadata host names whatever they resolve to', () => {
    const everything = createSsrfGuard(['0.0.0.0/0', 'metadata.google.internal']);
    expect(refusal(everything, '8.8.8.8', 80, 'metadata.google.internal')).toBe('cloud metadata');
    expect(refusal(everything, '8.8.8.8', 80, 'METADATA.google.internal.')).toBe('cloud metadata');
  });
});

describe('SSRF guard: MERCATO_WAL_PRIVATE_TARGETS', () => {
  it('opens an address on its port only', () => {
    const guard = createSsrfGuard(['127.0.0.1:9000']);
    expect(refusal(guard, '127.0.0.1', 9000)).toBeUndefined();
    expect(refusal(guard, '::ffff:127.0.0.1', 9000)).toBeUndefined();
    expect(refusal(guard, '127.0.0.1', 9001)).toMatch(
      /loopback address, not opened by MERCATO_WAL_PRIVATE_TARGETS/,
    );
    expect(refusal(guard, '127.0.0.2', 9000)).toMatch(/loopback/);
  });

  it('opens a CIDR on every port, IPv4 and IPv6', () => {
    const guard = createSsrfGuard(['10.1.0.0/16', 'fd00::/8', ' [::1]:8080 ']);
    expect(refusal(guard, '10.1.200.3', 1)).toBeUndefined();
    expect(refusal(guard, '10.2.0.1', 1)).toMatch(/private/);
    expect(refusal(guard, 'fd12::1', 5)).toBeUndefined();
    expect(refusal(guard, 'fc00::1', 5)).toMatch(/unique local/);
    expect(refusal(guard, '::1', 8080)).toBeUndefined();
    expect(refusal(guard, '::1', 8081)).toMatch(/loopback/);
  });

  it('opens a host name (any address it resolves to), on its port when it has one', () => {
    const guard = createSsrfGuard(['Hooks.Internal:8443', 'localhost']);
    expect(refusal(guard, '10.9.9.9', 8443, 'hooks.internal')).toBeUndefined();
    expect(refusal(guard, '10.9.9.9', 443, 'hooks.internal')).toMatch(/private/);
    expect(refusal(guard, '10.9.9.9', 8443, 'other.internal')).toMatch(/private/);
    expect(refusal(guard, '::1', 1, 'localhost')).toBeUndefined();
  });

  it.each([
    '127.0.0.1:0',
    '127.0.0.1:70000',
    '127.0.0.1:http',
    'localhost:',
    '10.0.0.0/33',
    'fd00::/129',
    'nonsense/8',
    '[::1',
    '[hooks.internal]:80',
    'bad host',
    'under_score!',
  ])('refuses the entry %j at start with a ConfigError naming the variable', (entry) => {
    expect(() => createSsrfGuard(['127.0.0.1', entry])).toThrow(ConfigError);
    expect(() => createSsrfGuard([entry])).toThrow(/^MERCATO_WAL_PRIVATE_TARGETS: /);
  });
});

describe('SSRF guard: the lookup a connection resolves with', () => {
  it('fails the lookup of a name resolving to loopback, for single and all-address lookups', async () => {
    for (const all of [false, true]) {
      const { error } = await lookup(closed, 'localhost', 80, all);
      expect(error).toBeInstanceOf(SsrfRefusedError);
      // The tenant reads only the generic message; the address goes to the operator's log.
      expect(error?.message).toBe(REFUSED_MESSAGE);
      expect((error as SsrfRefusedError).detail).toMatch(
        /^SSRF guard refused (127\.0\.0\.1|::1) for host localhost: loopback/,
      );
    }
  });

  it('answers only the addresses the operator opened, on that port', async () => {
    const guard = createSsrfGuard(['127.0.0.1:9000']);
    const all = await lookup(guard, 'localhost', 9000, true);
    expect(all.error).toBeNull();
    expect(all.address).toEqual([{ address: '127.0.0.1', family: 4 }]);
    const single = await lookup(guard, 'localhost', 9000, false);
    expect(single).toEqual({ error: null, address: '127.0.0.1' });
    expect((await lookup(guard, 'localhost', 9001, true)).error).toBeInstanceOf(SsrfRefusedError);
  });

  it('passes through a lookup that resolves to a public address (an IP literal resolves locally)', async () => {
    const { error, address } = await lookup(closed, '8.8.8.8', 443, true);
    expect(error).toBeNull();
    expect(address).toEqual([{ address: '8.8.8.8', family: 4 }]);
  });

  it('fails a host that does not resolve with the generic message, keeping the resolver error as its cause', async () => {
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND db.internal.corp'), {
      code: 'ENOTFOUND',
    });
    const guard = createSsrfGuard([], (_host, _options, callback) => callback(notFound, []));
    const { error } = await lookup(guard, 'db.internal.corp', 443, false);
    expect(error).toBeInstanceOf(HostLookupError);
    expect(error?.message).toBe(UNRESOLVED_MESSAGE);
    expect(error?.cause).toBe(notFound);
  });
});
