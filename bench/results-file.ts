import { readFile, writeFile } from 'node:fs/promises';

const README = new URL('./README.md', import.meta.url);

/** Replaces the section between `<!-- name:start -->` and `<!-- name:end -->` in bench/README.md. */
export async function writeSection(name: string, body: string): Promise<void> {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let text = await readFile(README, 'utf8').catch(() => '# Benchmarks\n');
  const block = `${start}\n${body.trim()}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  text =
    from >= 0 && to > from
      ? text.slice(0, from) + block + text.slice(to + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  await writeFile(README, text);
}

/** The parts BENCH_ONLY names (default: all), in its order; an unknown part exits 2 naming it. */
export function chosenParts(all: readonly string[]): string[] {
  const parts = (process.env['BENCH_ONLY'] ?? all.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = parts.filter((p) => !all.includes(p));
  if (unknown.length > 0) {
    console.error(`BENCH_ONLY: unknown part(s) ${unknown.join(', ')}; known: ${all.join(', ')}`);
    process.exit(2);
  }
  return parts;
}

/** Rewrites section `name` of bench/README.md after a full run, or as BENCH_WRITE_README=1/0 says. */
export async function writeSectionIf(name: string, body: string, full: boolean): Promise<void> {
  const forced = process.env['BENCH_WRITE_README'];
  if (forced === undefined ? full : forced === '1') {
    await writeSection(name, body);
    console.log(`bench/README.md: ${name} section rewritten`);
  } else {
    console.log('bench/README.md left alone (not a full run; BENCH_WRITE_README=1 forces it)');
  }
}
