/**
 * Part `memory` of `npm run bench:wal`: resident memory of a process that has written AND
 * delivered BENCH_MEMORY_SMALL (100,000) then BENCH_MEMORY_LARGE (1,000,000) messages, after a
 * forced full GC, one child process per backend (wal-memory-child.ts) so nothing else the
 * benchmark did is in its heap. BENCH_MEMORY_BACKENDS picks them (postgres,redis-streams,bullmq).
 */
import { fork } from 'node:child_process';
import { Redis } from 'ioredis';
import { BULLMQ_PREFIX } from './wal-bullmq.ts';
import { deleteRedisKeys, MEMORY_LARGE, MEMORY_SMALL, notes, REDIS_URL, results } from './wal-common.ts';
import type { MemoryReport } from './wal-memory-child.ts';
import { MERCATO_REDIS_PREFIX } from './wal-redis.ts';

export const MEMORY_BACKENDS = (process.env['BENCH_MEMORY_BACKENDS'] ?? 'postgres,redis-streams,bullmq')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

/** Runs one child; resolves with its reports, rejects on an error report or a bad exit. */
function runChild(backend: string, tenantId: string): Promise<MemoryReport[]> {
  const child = fork(new URL('./wal-memory-child.ts', import.meta.url), [], {
    execArgv: ['--expose-gc'],
    env: {
      ...process.env,
      BENCH_MEM_BACKEND: backend,
      BENCH_MEM_TENANT: tenantId,
      BENCH_MEM_CHECKPOINTS: `${MEMORY_SMALL},${MEMORY_LARGE}`,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reports: MemoryReport[] = [];
  return new Promise((resolve, reject) => {
    child.on('message', (report: MemoryReport) => {
      reports.push(report);
      if (report.type === 'rss')
        console.log(
          `memory ${backend}: ${report.messages} messages, MiB`,
          JSON.stringify(
            Object.fromEntries(Object.entries(report.usage).map(([k, v]) => [k, Math.round(v / 2 ** 20)])),
          ),
        );
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const failed = reports.find((r) => r.type === 'error');
      if (failed && failed.type === 'error') reject(new Error(`${backend} child: ${failed.message}`));
      else if (code !== 0) reject(new Error(`${backend} child exited with ${code ?? signal}`));
      else resolve(reports);
    });
  });
}

export async function runMemory(tenantId: string, backends = MEMORY_BACKENDS): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const failures: string[] = [];
  try {
    for (const backend of backends) {
      await deleteRedisKeys(redis, `${MERCATO_REDIS_PREFIX}:mem`);
      await deleteRedisKeys(redis, `${BULLMQ_PREFIX}:mem`);
      try {
        const reports = await runChild(backend, tenantId);
        for (const report of reports) {
          if (report.type !== 'rss') continue;
          const size = report.messages === MEMORY_SMALL ? 'Small' : 'Large';
          results[`mem:${backend}:rss${size}`] = report.rss;
          results[`mem:${backend}:heap${size}`] = report.heapUsed;
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        notes.push(`Memory (${backend}) FAILED: ${message}`);
        failures.push(backend);
        console.error(`memory ${backend} FAILED`, error);
      }
    }
  } finally {
    await deleteRedisKeys(redis, `${MERCATO_REDIS_PREFIX}:mem`).catch(() => {});
    await deleteRedisKeys(redis, `${BULLMQ_PREFIX}:mem`).catch(() => {});
    redis.disconnect();
  }
  if (failures.length === backends.length) throw new Error(`every memory child failed (${failures})`);
}
