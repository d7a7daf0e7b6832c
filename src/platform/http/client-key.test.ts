import { describe, expect, it } from 'vitest';
import { clientKey } from './client-key.ts';

describe('clientKey', () => {
  it('keeps an IPv4 address as it is', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
  });

  it('unwraps an IPv4-mapped IPv6 address to its IPv4 address, in any spelling', () => {
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::FFFF:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:cb00:7107')).toBe('203.0.113.7');
    expect(clientKey('0:0:0:0:0:ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('keys an IPv6 address on its /64 prefix, whatever the interface identifier', () => {
    expect(clientKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
  });

  it('normalizes full, compressed and uppercase spellings to one key', () => {
    for (const spelling of [
      '2001:0db8:0001:0002:0000:0000:0000:0001',
      '2001:DB8:1:2::1',
      '2001:db8:1:2:0:0:0:ffff',
      '2001:db8:1:2::192.0.2.1',
    ]) {
      expect(clientKey(spelling), spelling).toBe('2001:db8:1:2::/64');
    }
    expect(clientKey('2001:db8::1')).toBe('2001:db8::/64');
    expect(clientKey('2001:0:0:1::1')).toBe('2001:0:0:1::/64');
    expect(clientKey('::1')).toBe('::/64');
    expect(clientKey('::')).toBe('::/64');
  });

  it('ignores a zone id', () => {
    expect(clientKey('fe80::1%eth0')).toBe('fe80::/64');
    expect(clientKey('FE80::abcd%25')).toBe('fe80::/64');
  });

  it('returns anything that is not an IP address unchanged', () => {
    for (const text of ['', 'unknown', '2001:db8::1::2', '999.1.1.1']) expect(clientKey(text)).toBe(text);
  });
});
