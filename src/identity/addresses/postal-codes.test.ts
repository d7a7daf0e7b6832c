import { describe, expect, it } from 'vitest';
import { checkAddress } from './address-rules.ts';
import { COUNTRY_CODES, isCountryCode } from './countries.ts';
import { normalisePostalCode, postalCodeFits } from './postal-codes.ts';

const fits = (country: string, code: string) => postalCodeFits(country, normalisePostalCode(country, code));

describe('country codes', () => {
  it('knows exactly the 249 officially assigned ISO 3166-1 alpha-2 codes', () => {
    expect(COUNTRY_CODES.size).toBe(249);
    for (const code of ['US', 'DE', 'AX', 'BQ', 'SS', 'CW', 'TW', 'PS'])
      expect(isCountryCode(code), code).toBe(true);
    for (const code of ['UK', 'EU', 'XK', 'ZZ', 'AN', 'YU', 'us', 'USA'])
      expect(isCountryCode(code), code).toBe(false);
  });
});

describe('postal codes', () => {
  it.each([
    ['US', '94105'],
    ['US', '94105-1234'],
    ['CA', 'K1A 0B1'],
    ['CA', 'k1a0b1'],
    ['GB', 'SW1A 1AA'],
    ['GB', 'ec1a1bb'],
    ['GB', 'M1 1AE'],
    ['GB', 'B33 8TH'],
    ['GB', 'CR2 6XH'],
    ['GB', 'DN55 1PT'],
    ['GB', 'W1A 0AX'],
    ['DE', '10115'],
    ['FR', '75008'],
    ['NL', '1012 AB'],
    ['NL', '1012ab'],
    ['JP', '100-0001'],
    ['JP', '1000001'],
    ['AU', '2000'],
    ['AT', '1010'],
    ['BE', '1000'],
    ['CH', '8001'],
    ['DK', '1050'],
    ['NO', '0150'],
    ['IN', '110001'],
    ['BR', '01310-100'],
    ['BR', '01310100'],
    ['PL', '00-950'],
    ['SE', '114 55'],
    ['IE', 'D02 X285'],
    ['ES', '28013'],
    ['KE', '00100'],
    ['AR', 'C1425'],
  ])('accepts %s %s', (country, code) => {
    expect(fits(country, code)).toBe(true);
  });

  it.each([
    ['US', '9410'],
    ['US', '94105-12'],
    ['US', 'ABCDE'],
    ['CA', 'D1A 0B1'],
    ['CA', '12345'],
    ['GB', '12345'],
    ['GB', 'SW1A'],
    ['DE', '1011'],
    ['FR', '750080'],
    ['NL', '0123 AB'],
    ['JP', '100-001'],
    ['AU', '20000'],
    ['CH', '800'],
    ['IN', '011001'],
    ['BR', '01310-10'],
    ['ES', '53001'],
    ['KE', '!'],
    ['KE', 'A'],
    ['KE', '12345678901'],
  ])('rejects %s %s', (country, code) => {
    expect(fits(country, code)).toBe(false);
  });

  it('stores the canonical form: uppercase with the separator in place', () => {
    expect(normalisePostalCode('CA', ' k1a0b1 ')).toBe('K1A 0B1');
    expect(normalisePostalCode('GB', 'sw1a1aa')).toBe('SW1A 1AA');
    expect(normalisePostalCode('NL', '1012ab')).toBe('1012 AB');
    expect(normalisePostalCode('JP', '1000001')).toBe('100-0001');
    expect(normalisePostalCode('US', '94105')).toBe('94105');
  });

  it('checks the country first and the postal code against it', () => {
    expect(checkAddress('de', '10115')).toEqual({
      errors: [],
      country: 'DE',
      postalCode: '10115',
    });
    expect(checkAddress('ZZ', '10115').errors.map((e) => e.pointer)).toEqual(['/country']);
    expect(checkAddress('CA', '10115').errors.map((e) => e.pointer)).toEqual(['/postalCode']);
  });
});
