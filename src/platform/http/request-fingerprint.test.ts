import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, requestFingerprint } from './request-fingerprint.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('request fingerprints', () => {
  it('writes objects with their keys sorted at every depth and arrays in their order', () => {
    const value = { b: 1, a: { d: [3, { z: 1, y: 2 }, 1], c: null } };
    expect(canonicalJson(value)).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1},1]},"b":1}');
    expect(canonicalJson({ a: { c: null, d: [3, { y: 2, z: 1 }, 1] }, b: 1 })).toBe(canonicalJson(value));
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }, 3], c: null } })).not.toBe(canonicalJson(value));
  });

  it('keeps what JSON.stringify keeps: a key named __proto__, dates, no undefined fields', () => {
    const parsed = JSON.parse('{"b":2,"__proto__":{"x":1}}');
    expect(canonicalJson(parsed)).toBe('{"__proto__":{"x":1},"b":2}');
    expect(canonicalJson({ at: new Date(0), gone: undefined })).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson(undefined)).toBe('null');
  });

  it('matches its own hash and the order-dependent hash stored before, and nothing else', () => {
    const body = { quantity: 1, payment: { token: 'tok_visa' } };
    const print = requestFingerprint(body, 'POST /x\n');
    expect(print.hash).toBe(sha256('POST /x\n{"payment":{"token":"tok_visa"},"quantity":1}'));
    expect(requestFingerprint({ payment: { token: 'tok_visa' }, quantity: 1 }, 'POST /x\n').hash).toBe(
      print.hash,
    );
    expect(print.matches(print.hash)).toBe(true);
    expect(print.matches(sha256(`POST /x\n${JSON.stringify(body)}`))).toBe(true);
    expect(print.matches(sha256(`POST /y\n${JSON.stringify(body)}`))).toBe(false);
    expect(print.matches(requestFingerprint({ ...body, quantity: 2 }, 'POST /x\n').hash)).toBe(false);
  });
});
