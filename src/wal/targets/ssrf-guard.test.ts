import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { guardedLookup, isRefusedAddress, SsrfRefusedError } from './ssrf-guard.ts';

describe('SSRF guard', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.0.10',
    '100.64.0.1',
    '169.254.169.254',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '[::1]',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '::ffff:10.1.2.3',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'ff02::1',
    '64:ff9b::a00:1',
    'not-an-ip',
  ])('refuses %s', (address) => {
    expect(isRefusedAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public address %s',
    (address) => {
      expect(isRefusedAddress(address)).toBe(false);
    },
  );

  it('fails the lookup of a name resolving to loopback, for single and all-address lookups', async () => {
    const single = await new Promise<Error | null>((resolve) =>
      guardedLookup('localhost', { family: 4 }, (error) => resolve(error)),
    );
    expect(single).toBeInstanceOf(SsrfRefusedError);
    expect(single?.message).toBe('SSRF guard refused 127.0.0.1 for host localhost');
    const all = await new Promise<Error | null>((resolve) =>
      guardedLookup('localhost', { all: true }, (error) => resolve(error)),
    );
    expect(all).toBeInstanceOf(SsrfRefusedError);
  });

  it('passes through a lookup that resolves to a public address (an IP literal resolves locally)', async () => {
    const result = await new Promise<LookupAddress[] | string>((resolve, reject) =>
      guardedLookup('8.8.8.8', { all: true }, (error, address) => (error ? reject(error) : resolve(address))),
    );
    expect(result).toEqual([{ address: '8.8.8.8', family: 4 }]);
  });
});
