/**
 * The first `max` characters of text, counted as PostgreSQL counts them (code points), so a cut
 * never splits a surrogate pair: half an emoji is no text to PostgreSQL (as a column, or inside a
 * JSON parameter), and the whole statement carrying it fails. Text already short enough (in UTF-16
 * units, never more than its code points) is returned as it is.
 */
export const cutText = (text: string, max: number): string =>
  text.length <= max ? text : Array.from(text).slice(0, max).join('');
