import type { FieldError } from '../../platform/http/index.ts';
import { isReservedHeader } from '../targets/http-request.ts';
import { normalizeHost } from '../targets/ssrf-guard-ip.ts';
import { keepMaskedHeaders, maskSecret } from './masks.ts';
import type { OpenTarget } from './namespace.ts';
import { isSensitiveHeader } from './sealed-targets.ts';
import { checkTypePatterns } from './type-patterns.ts';

/**
 * The checks of a namespace's targets as a tenant sends them (validate.ts applies them to the
 * whole namespace), and the names and limits they hold to.
 */
export const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
const NAME = new RegExp(NAME_PATTERN);
export const SECRET_PATTERN = '^whsec_[A-Za-z0-9+/=]{24,128}$';
/** Standard Webhooks' secret: whsec_ and base64 (24 to 64 bytes there; up to 128 characters here). */
export const SECRET = new RegExp(SECRET_PATTERN);
const POINTER = /^(\/([^~/]|~[01])*)*$/;
const HANDLER = /^[a-z][a-zA-Z0-9._:-]{0,99}$/;
/** The handlers of EventBus subscribers (events/event-bus.ts): declared by modules, never by tenants. */
export const SUBSCRIBER_HANDLER_PREFIX = 'events:';
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;
// What Node sends as a header value: visible ASCII, space, tab and Latin-1 (no CR, LF or NUL).
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]{0,8192}$/;
/** Headers an HTTP target may add to every delivery, as many as a message may carry. */
export const MAX_TARGET_HEADERS = 50;
/**
 * Their names and values together, in bytes (Latin-1: a character each): what a receiver's default
 * header limit takes (Node's 16 KiB), so every delivery is not a large request a small write caused.
 */
export const MAX_TARGET_HEADER_BYTES = 16_384;

/** Bytes of a target's header names and string values (what is not a string fails on its own). */
const headerBytes = (headers: Record<string, unknown>): number =>
  Object.entries(headers).reduce(
    (sum, [key, value]) => sum + key.length + (typeof value === 'string' ? value.length : 0),
    0,
  );

export type Issues = FieldError[];
export const issue = (issues: Issues, pointer: string, message: string) =>
  issues.push({ in: 'body', pointer, message });
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const ALLOWED: Record<OpenTarget['type'], string[]> = {
  http: ['type', 'name', 'enabled', 'types', 'url', 'secret', 'timeoutMs', 'headers'],
  sql: ['type', 'name', 'enabled', 'types', 'statement', 'params'],
  redis: ['type', 'name', 'enabled', 'types', 'command', 'key', 'message'],
  internal: ['type', 'name', 'enabled', 'types', 'handler'],
};

function nonEmptyString(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.trim() !== '' && value.length <= max;
}

/**
 * Checks one target as sent and returns it in stored form. An HTTP target without a secret (or
 * with the masked one an earlier GET showed) keeps the secret of the stored target of that name.
 */
export function checkTarget(
  raw: unknown,
  at: string,
  issues: Issues,
  stored: Map<string, OpenTarget>,
  allowedHosts: string[],
): OpenTarget | undefined {
  if (!isObject(raw)) {
    issue(issues, at, 'must be an object');
    return undefined;
  }
  const before = issues.length;
  const type = raw['type'];
  if (type !== 'http' && type !== 'sql' && type !== 'redis' && type !== 'internal') {
    issue(issues, `${at}/type`, 'must be one of http, sql, redis, internal');
    return undefined;
  }
  for (const key of Object.keys(raw)) {
    if (!ALLOWED[type].includes(key)) issue(issues, `${at}/${key}`, `is not a property of a ${type} target`);
  }
  const name = raw['name'];
  if (typeof name !== 'string' || !NAME.test(name)) {
    issue(issues, `${at}/name`, `must match ${NAME_PATTERN}`);
  }
  const enabled = raw['enabled'] ?? true;
  if (typeof enabled !== 'boolean') issue(issues, `${at}/enabled`, 'must be a boolean');
  const types = checkTypePatterns(raw['types'], at, issues);
  const base = { name: name as string, enabled: enabled as boolean, ...(types ? { types } : {}) };

  switch (type) {
    case 'http': {
      const url = raw['url'];
      let parsed: URL | undefined;
      try {
        parsed = typeof url === 'string' && url.length <= 2048 ? new URL(url) : undefined;
      } catch {
        parsed = undefined;
      }
      if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
        issue(issues, `${at}/url`, 'must be an http or https URL');
      } else if (parsed.username !== '' || parsed.password !== '') {
        // Answers and the audit log show the URL in full: only the secret is masked.
        issue(
          issues,
          `${at}/url`,
          'must not carry credentials (user:password@); the secret signs every delivery',
        );
      } else if (
        allowedHosts.length > 0 &&
        !allowedHosts.some((host) => normalizeHost(host) === normalizeHost(parsed.hostname))
      ) {
        issue(issues, `${at}/url`, `host ${parsed.hostname} is not in allowedHosts`);
      }
      let secret = raw['secret'];
      const previous = stored.get(name as string);
      // Empty: the stored secret does not open (sealed under another key): it must be sent again.
      const kept = previous?.type === 'http' && previous.secret !== '' ? previous.secret : undefined;
      if (
        (secret === undefined || (kept !== undefined && secret === maskSecret(kept))) &&
        kept !== undefined
      ) {
        secret = kept;
      }
      if (secret === undefined) issue(issues, `${at}/secret`, 'is required');
      else if (typeof secret !== 'string' || !SECRET.test(secret)) {
        issue(issues, `${at}/secret`, 'must be whsec_ followed by 24 to 128 base64 characters');
      }
      const keptHeaders = previous?.type === 'http' ? previous.headers : undefined;
      const timeoutMs = raw['timeoutMs'] ?? 10_000;
      if (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 100 || (timeoutMs as number) > 60_000) {
        issue(issues, `${at}/timeoutMs`, 'must be an integer from 100 to 60000');
      }
      const sent = raw['headers'];
      const headers = isObject(sent) ? keepMaskedHeaders(sent, keptHeaders) : sent;
      if (headers !== undefined) {
        if (!isObject(headers)) issue(issues, `${at}/headers`, 'must be an object of strings');
        else if (Object.keys(headers).length > MAX_TARGET_HEADERS) {
          issue(issues, `${at}/headers`, `must hold at most ${MAX_TARGET_HEADERS} headers`);
        } else if (headerBytes(headers) > MAX_TARGET_HEADER_BYTES) {
          issue(
            issues,
            `${at}/headers`,
            `must hold at most ${MAX_TARGET_HEADER_BYTES} bytes of names and values`,
          );
        } else {
          for (const [key, value] of Object.entries(headers)) {
            if (isReservedHeader(key)) {
              issue(
                issues,
                `${at}/headers/${key}`,
                `header "${key}" is reserved (Host, Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-*, Webhook-*)`,
              );
            } else if (typeof value === 'string' && value.startsWith('…') && isSensitiveHeader(key)) {
              issue(
                issues,
                `${at}/headers/${key}`,
                'is a masked value this target does not store: send the header value itself',
              );
            } else if (!HEADER_NAME.test(key) || typeof value !== 'string' || !HEADER_VALUE.test(value)) {
              issue(
                issues,
                `${at}/headers/${key}`,
                'must be a valid header name with a one-line string value',
              );
            }
          }
        }
      }
      if (issues.length > before) return undefined;
      return {
        ...base,
        type,
        url: url as string,
        secret: secret as string,
        timeoutMs: timeoutMs as number,
        ...(headers !== undefined ? { headers: headers as Record<string, string> } : {}),
      };
    }
    case 'sql': {
      const statement = raw['statement'];
      if (!nonEmptyString(statement, 10_000))
        issue(issues, `${at}/statement`, 'must be a non-empty SQL statement');
      const params = raw['params'] ?? [];
      if (!Array.isArray(params)) issue(issues, `${at}/params`, 'must be an array of JSON pointers');
      else {
        params.forEach((param, i) => {
          if (typeof param !== 'string' || !POINTER.test(param)) {
            issue(issues, `${at}/params/${i}`, 'must be a JSON pointer (RFC 6901), e.g. /data/orderId');
          }
        });
      }
      if (issues.length > before) return undefined;
      return { ...base, type, statement: statement as string, params: params as string[] };
    }
    case 'redis': {
      const command = raw['command'];
      if (command !== 'DEL' && command !== 'PUBLISH')
        issue(issues, `${at}/command`, 'must be DEL or PUBLISH');
      const key = raw['key'];
      if (!nonEmptyString(key, 1024)) issue(issues, `${at}/key`, 'must be a non-empty string');
      const message = raw['message'];
      if (message !== undefined && typeof message !== 'string')
        issue(issues, `${at}/message`, 'must be a string');
      if (command === 'PUBLISH' && message === undefined)
        issue(issues, `${at}/message`, 'is required for PUBLISH');
      if (issues.length > before) return undefined;
      return {
        ...base,
        type,
        command: command as 'DEL' | 'PUBLISH',
        key: key as string,
        ...(message !== undefined ? { message: message as string } : {}),
      };
    }
    case 'internal': {
      const handler = raw['handler'];
      if (typeof handler !== 'string' || !HANDLER.test(handler)) {
        issue(issues, `${at}/handler`, 'must be the name of a registered handler, e.g. orders.reserve');
      } else if (handler.startsWith(SUBSCRIBER_HANDLER_PREFIX)) {
        // A module's subscriber takes domain events from its system namespace only, never a
        // message a tenant wrote (it would act on a forged event).
        issue(
          issues,
          `${at}/handler`,
          `handlers named ${SUBSCRIBER_HANDLER_PREFIX}… are domain-event subscribers`,
        );
      }
      if (issues.length > before) return undefined;
      return { ...base, type, handler: handler as string };
    }
  }
}
