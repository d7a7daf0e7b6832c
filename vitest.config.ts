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
    // Two files at a time: Vitest's default (cores - 1) runs one at a time on a 2-core machine,
    // where most of a file's time is spent waiting on PostgreSQL, Redis, child processes and timers.
    maxWorkers: 2,
    // One module graph per worker, not one per file: importing Fastify, Kysely, PGlite and the
    // modules again for each of ~400 files took about half of the run. Files share a worker's
    // module state, so a test file must leave no global behind (timers restored, env untouched,
    // every app it starts closed).
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [project('pglite'), project('postgres')],
  },
});
