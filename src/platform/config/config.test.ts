import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, SETTINGS } from './index.ts';

describe('configuration', () => {
  it('starts embedded on 127.0.0.1:3000 with nothing set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 3000,
      databaseUrl: undefined,
      workers: 1,
      demo: true,
    });
    expect(config.dataDir.endsWith('.mercato')).toBe(true);
    expect(config.bodyLimit).toBe(1024 * 1024);
  });

  it.each([
    ['PORT', 'eighty', /PORT must be a whole number from 0 to 65535, got "eighty"/],
    ['PORT', '70000', /PORT must be a whole number/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must start with postgres: or postgresql:/],
    ['DATABASE_URL', 'not a url', /DATABASE_URL must be a URL/],
    ['REDIS_URL', 'http://x', /REDIS_URL must start with redis: or rediss:/],
    ['MERCATO_DEMO', 'maybe', /MERCATO_DEMO must be true or false, got "maybe"/],
    ['MERCATO_MODULES', 'identity,warp', /MERCATO_MODULES must list modules from .*got "warp"/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL must be one of/],
    ['MERCATO_DEMO_PASSWORD', 'short', /MERCATO_DEMO_PASSWORD must be at least 12 characters/],
    ['MERCATO_WORKERS', '4', /MERCATO_WORKERS must be 1 without DATABASE_URL/],
  ])('refuses %s=%s with a message naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  // Each of these was accepted, and failed later: listen() with a stack trace (HOST), a CORS grant
  // that never matches, a saga hook that never pauses, demo users that login refuses (over 128
  // characters), a scrape token no Authorization header can carry.
  it.each([
    ['HOST', 'http://0.0.0.0', /HOST must be an IP address or a host name .*got "http:\/\/0\.0\.0\.0"/],
    ['HOST', '0.0.0.0:3000', /HOST must be an IP address or a host name/],
    ['HOST', '[::1]', /HOST must be an IP address or a host name/],
    [
      'MERCATO_TRUSTED_PROXIES',
      'true',
      /MERCATO_TRUSTED_PROXIES must list IP addresses or CIDRs .*got "true"/,
    ],
    [
      'MERCATO_TRUSTED_PROXIES',
      '10.0.0.0/8,proxy.internal',
      /MERCATO_TRUSTED_PROXIES .*got "proxy.internal"/,
    ],
    ['MERCATO_TRUSTED_PROXIES', '10.0.0.0/33', /MERCATO_TRUSTED_PROXIES .*got "10.0.0.0\/33"/],
    ['MERCATO_TRUSTED_PROXIES', '::1/129', /MERCATO_TRUSTED_PROXIES .*got "::1\/129"/],
    ['MERCATO_CORS_ORIGINS', 'shop.example', /MERCATO_CORS_ORIGINS must list origins .*got "shop\.example"/],
    ['MERCATO_CORS_ORIGINS', 'https://shop.example/app', /MERCATO_CORS_ORIGINS must list origins/],
    ['MERCATO_CORS_ORIGINS', '*, https://shop.example', /MERCATO_CORS_ORIGINS must list origins .*got "\*"/],
    ['MERCATO_TEST_PAUSE_AFTER_STEP', 'authorise', /MERCATO_TEST_PAUSE_AFTER_STEP must be one of validate/],
    [
      'MERCATO_CHECKOUT_PENDING_TIMEOUT_MS',
      '999',
      /MERCATO_CHECKOUT_PENDING_TIMEOUT_MS must be a whole number from 1000 to 86400000, got "999"/,
    ],
    ['MERCATO_DEMO_PASSWORD', 'p'.repeat(129), /MERCATO_DEMO_PASSWORD must be at most 128 characters/],
    ['MERCATO_DEMO_PASSWORD', '🔑'.repeat(6), /MERCATO_DEMO_PASSWORD must be at least 12 characters/],
    ['MERCATO_METRICS_TOKEN', 'scrape token', /MERCATO_METRICS_TOKEN must be printable ASCII without spaces/],
  ])('refuses %s=%s at start, not later', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  // Mercato's own retries on system namespaces (the checkout's watchdog): a bad value would retry
  // it never, forever, or with a negative or day-long-plus delay.
  it.each([
    [
      'MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS',
      '0',
      /MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS must be a whole number from 1 to 1000, got "0"/,
    ],
    [
      'MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS',
      '1001',
      /MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS must be a whole number from 1 to 1000/,
    ],
    ['MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS', 'ten', /MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS .*got "ten"/],
    [
      'MERCATO_WAL_SYSTEM_RETRY_BASE_MS',
      '0',
      /MERCATO_WAL_SYSTEM_RETRY_BASE_MS must be a whole number from 1 to 86400000/,
    ],
    ['MERCATO_WAL_SYSTEM_RETRY_BASE_MS', '-5', /MERCATO_WAL_SYSTEM_RETRY_BASE_MS must be a whole number/],
    ['MERCATO_WAL_SYSTEM_RETRY_BASE_MS', '1.5', /MERCATO_WAL_SYSTEM_RETRY_BASE_MS must be a whole number/],
    [
      'MERCATO_WAL_SYSTEM_RETRY_MAX_MS',
      '86400001',
      /MERCATO_WAL_SYSTEM_RETRY_MAX_MS must be a whole number from 1 to 86400000/,
    ],
    // Below the default base (1000 ms).
    [
      'MERCATO_WAL_SYSTEM_RETRY_MAX_MS',
      '500',
      /MERCATO_WAL_SYSTEM_RETRY_BASE_MS must be at most MERCATO_WAL_SYSTEM_RETRY_MAX_MS \(500\), got "1000"/,
    ],
    // Above the default max (300000 ms).
    [
      'MERCATO_WAL_SYSTEM_RETRY_BASE_MS',
      '600000',
      /MERCATO_WAL_SYSTEM_RETRY_BASE_MS must be at most MERCATO_WAL_SYSTEM_RETRY_MAX_MS \(300000\), got "600000"/,
    ],
  ])("refuses %s=%s, Mercato's own retry policy, at start", (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it("retries Mercato's own deliveries about 25 minutes by default, and as long as the operator says", () => {
    expect(loadConfig({}).walSystemRetry).toEqual({
      maxAttempts: 10,
      baseDelayMs: 1000,
      maxDelayMs: 300_000,
    });
    expect(
      loadConfig({
        MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS: '1000',
        MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '86400000',
        MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '86400000',
      }).walSystemRetry,
    ).toEqual({ maxAttempts: 1000, baseDelayMs: 86_400_000, maxDelayMs: 86_400_000 });
  });

  it('accepts addresses and host names to listen on', () => {
    for (const host of ['0.0.0.0', '::', '::1', 'localhost', 'mercato.internal']) {
      expect(loadConfig({ HOST: host }).host).toBe(host);
    }
  });

  it('trusts no proxy by default, and the listed addresses and CIDRs when told', () => {
    expect(loadConfig({}).trustedProxies).toEqual([]);
    expect(
      loadConfig({ MERCATO_TRUSTED_PROXIES: ' 10.0.0.0/8, FD00::/8 ,127.0.0.1' }).trustedProxies,
    ).toEqual(['10.0.0.0/8', 'fd00::/8', '127.0.0.1']);
  });

  it('writes each CORS origin as a browser sends it in Origin', () => {
    expect(
      loadConfig({
        MERCATO_CORS_ORIGINS: 'https://Shop.Example/, http://admin.example:80, http://localhost:5173',
      }).corsOrigins,
    ).toEqual(['https://shop.example', 'http://admin.example', 'http://localhost:5173']);
  });

  it("caps WAL retention at 365 days by default, from 7 days (the system namespaces' dead letters) to 10 years", () => {
    expect(loadConfig({}).walMaxRetentionSeconds).toBe(31_536_000);
    expect(loadConfig({ MERCATO_WAL_MAX_RETENTION_SECONDS: '604800' }).walMaxRetentionSeconds).toBe(604_800);
    for (const value of ['604799', '315360001', '3600']) {
      expect(() => loadConfig({ MERCATO_WAL_MAX_RETENTION_SECONDS: value })).toThrow(
        /MERCATO_WAL_MAX_RETENTION_SECONDS must be a whole number from 604800 to 315360000/,
      );
    }
  });

  it('documents every variable it reads', async () => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(new URL('./config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/\(env, '([A-Z_]+)'/g)].map((m) => m[1]));
    read.add('HOST');
    for (const name of read) expect(SETTINGS.map((s) => s.name)).toContain(name);
  });
});
