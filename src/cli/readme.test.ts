import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { configTable } from '../platform/config/index.ts';
import { testDatabaseKind } from '../platform/testing/test-databases.ts';
import { runMercato } from './mercato-process.ts';

const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');

/** The shell blocks of one README section, in order. */
function shellBlocks(from: string, to: string): string[] {
  const section = readme.slice(readme.indexOf(from), readme.indexOf(to));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

describe('README', () => {
  it('shows the configuration table of every variable the code reads', () => {
    // Cells are compared without the padding a Markdown formatter adds.
    const cells = (line: string) =>
      line
        .split('|')
        .map((cell) => cell.trim().replace(/^-+$/, '---'))
        .join('|');
    const rows = readme.split('\n').map(cells);
    for (const row of configTable().split('\n').map(cells)) expect(rows).toContain(row);
  });

  it('gives the two quickstart commands', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });

  it('starts the API tour on a data directory of its own, so it works after the quickstart', () => {
    const [start] = shellBlocks('## API tour', '## Configuration');
    expect(start).toMatch(/MERCATO_DATA_DIR=(?!\.mercato\s)\S+ .*MERCATO_DEMO_PASSWORD=\S+ npm start/);
  });

  // The tour is run once, on the embedded shape it describes.
  it.runIf(testDatabaseKind() === 'pglite')(
    'API tour works as written against a started server',
    async () => {
      const [start, ...blocks] = shellBlocks('## API tour', '## Configuration');
      const password = start!.match(/MERCATO_DEMO_PASSWORD=(\S+)/)![1]!;
      const dataDir = await mkdtemp(join(tmpdir(), 'mercato-readme-'));
      const server = runMercato(['start'], {
        MERCATO_DATA_DIR: dataDir,
        PORT: '0',
        MERCATO_DEMO_PASSWORD: password,
      });
      try {
        const [, host] = await server.waitFor(/API +http:\/\/([^\s/]+)\/api\/v1/, 120_000);
        const script = blocks
          .map((block, i) => `echo "<<<${i}>>>"\n${block.replaceAll('127.0.0.1:3000', host!)}`)
          .join('\necho\n');
        const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script]);
        const outputs = stdout.split(/<<<\d+>>>/).slice(1);
        expect(outputs).toHaveLength(blocks.length);
        const [
          profile,
          addresses,
          register,
          staff,
          tenant,
          wal,
          shop,
          checkout,
          stock,
          flash,
          exceptions,
          problem,
        ] = outputs;
        expect(profile).toContain('"email":"customer@demo.test"');
        expect(addresses).toContain('"isDefault":true');
        expect(register).toContain('"refreshToken"');
        expect(staff).toContain('"role":"operator"');
        expect(staff).toContain('"email":"admin@demo.test"');
        expect(tenant).toContain('"slug":"acme"');
        expect(wal).toContain('"name":"orders"');
        expect(wal).toMatch(/"state":"(pending|delivering|delivered)"/);
        expect(shop).toContain('"Trailblazer Running Shoe"');
        expect(shop).toContain('"subtotal": 25800');
        expect(shop).toContain('"code": "INSUFFICIENT_STOCK"');
        expect(checkout).toContain('"status": "completed"');
        expect(checkout).toContain('"paymentStatus": "captured"');
        expect(checkout).toContain('"confirm invoke succeeded"');
        expect(stock).toContain('"handle": "stoneware-mug"');
        expect(stock).toContain('"available": 24');
        expect(stock).toContain('"reason": "first delivery"');
        expect(flash).toContain('"status": "admitted"');
        expect(flash).toContain('"admitted": 1');
        expect(flash).toContain('"remaining": 9');
        expect(exceptions).toContain('"transactionId": "TX-1001"');
        expect(exceptions).toContain('"category": "BUSINESS_RULE"');
        expect(exceptions).toContain('"severity": "HIGH"');
        expect(exceptions).toContain('"status": "ACKNOWLEDGED"');
        expect(exceptions).toContain('"acknowledged"');
        expect(problem).toContain('"code":"UNAUTHENTICATED"');
        for (const output of outputs.slice(0, -1)) expect(output).not.toMatch(/"status":[45]\d\d/);
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
        await rm(dataDir, { recursive: true, force: true });
      }
    },
    // A new data directory, every migration and the demo shop seeded through the API.
    180_000,
  );
});
