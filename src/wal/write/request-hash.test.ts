import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, type MessageInput, requestHash } from './prepare.ts';

/** The definition: sha256 of the canonical JSON of the fields that define a message. */
const reference = (namespace: string, input: MessageInput) =>
  createHash('sha256')
    .update(
      canonicalJson({
        namespace,
        payload: input.payload,
        key: input.key ?? null,
        headers: input.headers ?? {},
        delay: input.lifecycle?.delay ?? 0,
        maxAttempts: input.lifecycle?.maxAttempts ?? null,
      }),
    )
    .digest('hex');

describe('request hash', () => {
  const payloads: unknown[] = [
    { a: 1, b: [1, 'two', { c: null, d: true }] },
    { b: 1, a: 2 },
    { outer: { z: 1, y: { x: [3, { w: 1, v: 2 }] } } },
    { 10: 'ten', 9: 'nine', a: 'a' },
    { a: undefined, b: 1 },
    [1, undefined, 'x'],
    'plain text',
    42,
    null,
    { emoji: '🧾', quote: '"', backslash: '\\' },
    { when: new Date('2026-01-02T03:04:05Z') },
    { nested: { when: new Date('2026-01-02T03:04:05Z'), b: 1 } },
    { fn: () => 1, a: 1 },
  ];

  it('is the sha256 of the canonical JSON of the message, whatever the payload', () => {
    for (const payload of payloads) {
      const input: MessageInput = { payload, key: 'k', headers: { b: '2', a: '1' }, lifecycle: { delay: 5 } };
      expect(requestHash('orders', input), JSON.stringify(payload)).toBe(reference('orders', input));
      expect(requestHash('orders', { payload })).toBe(reference('orders', { payload }));
    }
    expect(requestHash('orders', { payload: undefined })).toBe(reference('orders', { payload: undefined }));
  });

  it('does not depend on the order of keys, and does on every value', () => {
    const one = requestHash('orders', { payload: { a: 1, b: { c: 2, d: 3 } } });
    expect(requestHash('orders', { payload: { b: { d: 3, c: 2 }, a: 1 } })).toBe(one);
    expect(requestHash('orders', { payload: { a: 1, b: { c: 2, d: 4 } } })).not.toBe(one);
    expect(requestHash('payments', { payload: { a: 1, b: { c: 2, d: 3 } } })).not.toBe(one);
    expect(requestHash('orders', { payload: { a: 1, b: { c: 2, d: 3 } }, key: 'k' })).not.toBe(one);
  });

  it('tells two different dates apart', () => {
    const at = (iso: string) => requestHash('orders', { payload: { b: { when: new Date(iso), a: 1 } } });
    expect(at('2026-01-01T00:00:00Z')).not.toBe(at('2026-01-02T00:00:00Z'));
  });
});
