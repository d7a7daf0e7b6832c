/**
 * Key layout. Every key of one (tenant, namespace) shares the hash tag `{tenant/namespace}`, so a
 * namespace lives in one cluster slot and its Lua scripts touch one slot only. Message ids and
 * ordering keys follow the tag raw (the scripts build `base:m:<messageId>` themselves).
 */
export type NsKeys = {
  /** `<prefix>:{<tenant>/<namespace>}`: what the scripts derive per-message keys from. */
  base: string;
  /** Stream of due messages (entries: m = messageId, d = due epoch ms). */
  stream: string;
  /** Sorted set of messages due later (member messageId, score due epoch ms). */
  delayed: string;
  /** Counter of messages parked behind an earlier message of their key. */
  parked: string;
  /**
   * Set while the namespace is retired here (it moved to another backend and nothing was left to
   * deliver): the append script refuses it. `<prefix>:retired:{tag}`, in the namespace's slot but
   * outside `base*`, so that dropping the rest of its keys leaves it.
   */
  retired: string;
  /**
   * Set by `drop` (the namespace's deletion), before its keys go, for DROP_MARKER_SECONDS: holds
   * the dropped namespace's createdAt ('*': any). While it is set no script makes or writes its
   * keys again for that namespace (see README, Who makes the stream). `<prefix>:dropped:{tag}`,
   * in the namespace's slot, outside `base*` as `retired`.
   */
  dropped: string;
};

/** The consumer group every process joins. */
export const GROUP = 'mercato-wal';

/** Most history records kept per message (the oldest are dropped). */
export const HISTORY_CAP = 100;

export function nsKeys(prefix: string, tenantId: string, namespace: string): NsKeys {
  const base = `${prefix}:{${encodeURIComponent(tenantId)}/${encodeURIComponent(namespace)}}`;
  return keysOfBase(base);
}

/** Hash of one message's fields and state. */
export const messageKey = (base: string, messageId: string) => `${base}:m:${messageId}`;

/** List of one message's attempt records (JSON each, oldest first, capped). */
export const historyKey = (base: string, messageId: string) => `${base}:h:${messageId}`;

/** Set of every namespace base this prefix has written to (for lag()). */
export const registryKey = (prefix: string) => `${prefix}:namespaces`;

/** The keys of a namespace from its base (as the registry stores it). */
export function keysOfBase(base: string): NsKeys {
  // base = `<prefix>:{<tag>}`, the tag URI-encoded (no ':' nor '{' in it): the last ':{' splits them.
  const at = base.lastIndexOf(':{');
  const marker = (name: string) => `${base.slice(0, at)}:${name}${base.slice(at)}`;
  return {
    base,
    stream: `${base}:s`,
    delayed: `${base}:d`,
    parked: `${base}:pk`,
    retired: marker('retired'),
    dropped: marker('dropped'),
  };
}
