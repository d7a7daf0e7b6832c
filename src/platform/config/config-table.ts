import { SETTINGS } from './config.ts';

/** The Markdown table of every environment variable, as the README shows it. */
export function configTable(): string {
  const rows = SETTINGS.map(
    (s) => `| \`${s.name}\` | ${s.default.startsWith('(') ? s.default : `\`${s.default}\``} | ${s.doc} |`,
  );
  return ['| Variable | Default | What it does |', '|---|---|---|', ...rows].join('\n');
}
