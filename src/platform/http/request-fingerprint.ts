import { createHash, createHmac } from 'node:crypto';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Each object as a copy with its keys sorted; called by JSON.stringify for every value (after toJSON). */
function sortKeys(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const source = value as Record<string, unknown>;
  // No prototype: a key named __proto__ stays a key.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(source).sort()) sorted[key] = source[key];
  return sorted;
}

/**
 * The JSON text of a value with every object's keys sorted, at every depth; arrays keep their
 * order, and everything else is as JSON.stringify writes it. Two bodies that differ only in the
 * order of their keys (which many HTTP clients and serializers do not keep) have the same text.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value ?? null, sortKeys);
}

/** What a request's Idempotency-Key is stored with, and how a later request under the key is matched to it. */
export type RequestFingerprint = {
  /** The hash to store with a new key: sha256 of the prefix and the body's canonical JSON. */
  readonly hash: string;
  /** Whether a stored hash is this request's: the same request, whatever the order of its body's keys. */
  matches(stored: string): boolean;
};

/**
 * The fingerprint of a request for its Idempotency-Key: the body as canonical JSON (keys sorted),
 * after a prefix naming whatever else makes the request (the platform's: method and URL). With
 * `key` the hash is HMAC-SHA256 under it, so a stored hash of a body holding a secret (a password)
 * cannot be tested against guesses by whoever reads the table without the key.
 * Every place that records a key's request hash (the platform's store, checkout's orders, flash
 * sales' admissions) makes it here, so they agree on what "the same request" is.
 */
export function requestFingerprint(body: unknown, prefix = '', key?: Buffer): RequestFingerprint {
  const text = prefix + canonicalJson(body);
  const plain = sha256(text);
  const hash = key ? createHmac('sha256', key).update(text).digest('hex') : plain;
  return {
    hash,
    // A keyed record matches only its key's hash; a plain one (stored before keys, or without
    // one) the plain or the legacy hash, so a retry that spans the upgrade still replays.
    matches: (stored) => stored === hash || stored === plain || stored === legacyHash(body, prefix),
  };
}

/**
 * The hash written before canonical fingerprints: sha256 of the prefix and JSON.stringify(body),
 * which depends on the order of the body's keys. A hash stored by an earlier release (platform
 * records, orders' request_hash, admissions' request_hash) still matches the same body, so a
 * retry that spans the upgrade replays instead of answering 409. (A body whose keys are already
 * sorted has the same hash either way.)
 *
 * Remove this (and its call in `matches`) once no stored hash written before the upgrade can be
 * retried: platform records expire 24 hours after they are written, so one day suffices for them;
 * orders and flash admissions keep their hash with the row, so wait until a client's retry of a
 * request from before the upgrade no longer matters (in practice a release or two later). After
 * removal such a retry answers 409 IDEMPOTENCY_KEY_REUSED when its body's keys were not sorted.
 */
function legacyHash(body: unknown, prefix: string): string {
  return sha256(prefix + JSON.stringify(body));
}
