import { unescapePointerToken } from '../../platform/http/index.ts';
import type { Delivery } from './target-result.ts';

/** What SQL params and Redis placeholders point into: `/payload/orderId`, `/messageId`, … */
export function pointerDocument(delivery: Delivery): Record<string, unknown> {
  return {
    payload: delivery.payload,
    headers: delivery.headers,
    messageId: delivery.messageId,
    key: delivery.key,
    tenantId: delivery.tenantId,
    namespace: delivery.namespace,
  };
}

/** Resolves an RFC 6901 JSON pointer; undefined when a step is missing. Throws on a malformed pointer. */
export function resolvePointer(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  if (!pointer.startsWith('/')) throw new Error(`invalid JSON pointer "${pointer}": it must start with "/"`);
  let current: unknown = document;
  for (const raw of pointer.slice(1).split('/')) {
    const token = unescapePointerToken(raw);
    if (current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current)) {
      if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
      current = current[Number(token)];
    } else {
      if (!Object.hasOwn(current, token)) return undefined;
      current = (current as Record<string, unknown>)[token];
    }
  }
  return current;
}
