import { cpus, totalmem } from 'node:os';

/** One line describing the machine a benchmark ran on. */
export function describeMachine(extra: string[] = []): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return [
    `${cpus().length} × ${cpu}`,
    `${Math.round(totalmem() / 2 ** 30)} GiB`,
    `Node.js ${process.versions.node}`,
    `${process.platform} ${process.arch}`,
    ...extra,
  ].join(', ');
}
