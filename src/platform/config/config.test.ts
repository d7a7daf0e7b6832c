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

  it('documents every variable it reads', async () => {
    const { readFile } = await import('node:fs/promises');
    const source = await readFile(new URL('./config.ts', import.meta.url), 'utf8');
    const read = new Set([...source.matchAll(/\(env, '([A-Z_]+)'/g)].map((m) => m[1]));
    read.add('HOST');
    for (const name of read) expect(SETTINGS.map((s) => s.name)).toContain(name);
  });
});
