import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { prepareTemplate, type TestDatabaseKind } from './test-databases.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mercatoTemplate: string;
  }
}

/** Vitest globalSetup: one migrated template per project (pglite or postgres) per run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kind: TestDatabaseKind = project.name === 'postgres' ? 'postgres' : 'pglite';
  const dir = await mkdtemp(join(tmpdir(), 'mercato-test-'));
  const { template, teardown } = await prepareTemplate(kind, join(dir, 'pglite.tar'));
  project.provide('mercatoTemplate', template);
  return async () => {
    await teardown();
    await rm(dir, { recursive: true, force: true });
  };
}
