import { defineConfig } from 'vitest/config';

// Every suite runs once per database: PGlite always, PostgreSQL when scripts/test.ts found it.
const project = (name: 'pglite' | 'postgres') => ({
  extends: true as const,
  test: {
    name,
    env: { MERCATO_TEST_DB: name },
    include: ['src/**/*.test.ts', 'bench/**/*.test.ts'],
    globalSetup: ['src/platform/testing/global-setup.ts'],
  },
});

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [project('pglite'), project('postgres')],
  },
});
