const TIMESTAMP =
  /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.\d{1,9})?(?:[Zz]|[+-](\d\d)(?::?(\d\d))?)$/;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS[month - 1]!;
}

/** The first and last instants (UTC) a date-time may name. */
const FIRST = Date.parse('0001-01-01T00:00:00Z');
const LAST = Date.parse('9999-12-31T23:59:59.999Z');

/**
 * Whether text is an RFC 3339 date-time PostgreSQL's timestamptz stores as it is and JavaScript's
 * Date reads as the same instant: years 0001 to 9999 (PostgreSQL refuses year 0000, and
 * JavaScript's `+275760-…` years are beyond its range), in UTC too (an offset cannot take it past
 * either end), a real calendar day and time, and a UTC offset under 16 hours (PostgreSQL refuses
 * larger ones) with its minutes. A leap second (23:59:60) and an offset of hours alone (`+01`)
 * are refused: Date cannot read them, so code that compares or computes with the time failed on
 * them (a 500), and PostgreSQL refuses a leap second with a fraction. A fraction of a second has
 * at most 9 digits (nanoseconds): PostgreSQL refuses a long one (a 500 wherever it was stored). Every `format: 'date-time'`
 * input is checked with it (app.ts), and so are the times inside cursors.
 */
export function isStorableTimestamp(text: string): boolean {
  const match = TIMESTAMP.exec(text);
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match
    .slice(1)
    .map((part) => (part === undefined ? 0 : Number(part))) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return false;
  if (hour > 23 || minute > 59) return false;
  if (second > 59 || offsetHours > 15 || offsetMinutes > 59) return false;
  const instant = Date.parse(text);
  return instant >= FIRST && instant <= LAST;
}
