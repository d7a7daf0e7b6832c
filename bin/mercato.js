#!/usr/bin/env node
// The `mercato` command. Mercato's TypeScript runs on Node.js 24 directly (type stripping);
// npm scripts and npx put the pinned node from node_modules/.bin first on PATH.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(
    `Mercato needs Node.js 24 (this is ${process.versions.node}). Run it through npm, which uses the pinned one: ` +
      '`npm start`, `npx mercato --help`, or node_modules/.bin/node bin/mercato.js.',
  );
  process.exit(1);
}
// Cache compiled bytecode between runs (node_modules/.cache): a second start loads much faster.
const { enableCompileCache } = await import('node:module');
enableCompileCache?.(new URL('../node_modules/.cache/mercato-compile', import.meta.url).pathname);
await import('../src/cli/main.ts');
