/** One reference token of an RFC 6901 JSON pointer, escaped: `~` as `~0`, `/` as `~1`. */
export const escapePointerToken = (token: string): string =>
  token.replaceAll('~', '~0').replaceAll('/', '~1');

/** One reference token of an RFC 6901 JSON pointer, read back: `~1` as `/`, then `~0` as `~`. */
export const unescapePointerToken = (token: string): string =>
  token.replaceAll('~1', '/').replaceAll('~0', '~');
