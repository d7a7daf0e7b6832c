/** One CSV record: its cells and the line it starts on (1-based; quoted newlines count). */
export type CsvRecord = { cells: string[]; line: number };

/**
 * Parses RFC 4180 CSV: comma-separated, fields optionally in double quotes (a quote inside one is
 * doubled), CRLF or LF line ends, newlines allowed inside quotes, a UTF-8 BOM ignored. Blank lines
 * are skipped. An unterminated quote ends at the end of the text and is reported.
 */
export function parseCsv(text: string): { records: CsvRecord[]; unterminatedAt?: number } {
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let cells: string[] = [];
  let cell = '';
  let start = 1;
  let quoted = false;
  let quoteLine = 0;
  let any = false;
  const endRecord = () => {
    cells.push(cell);
    if (any || cells.length > 1 || cell !== '') records.push({ cells, line: start });
    cells = [];
    cell = '';
    any = false;
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
      continue;
    }
    if (c === '"' && cell === '') {
      quoted = true;
      quoteLine = line;
      any = true;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      any = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else cell += c;
  }
  if (quoted || cell !== '' || cells.length > 0 || any) endRecord();
  return quoted ? { records, unterminatedAt: quoteLine } : { records };
}
