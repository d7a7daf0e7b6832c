import { createHash } from 'node:crypto';

/** Keyed messages spread over this many partitions, each with its own one-at-a-time consumer. */
export const KEY_PARTITIONS = 16;

function hex(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Stream, subject and consumer names of one (tenant, namespace). */
export type NamespaceNames = {
  /** Hash of tenant/namespace: a valid subject token, stream-name part and KV key part. */
  hash: string;
  stream: string;
  /** `${prefix}.${hash}.>` */
  subjects: string;
  unkeyedSubject: string;
  keyedSubject(partition: number): string;
  unkeyedConsumer: string;
  keyedConsumer(partition: number): string;
};

export function namespaceNames(prefix: string, tenantId: string, namespace: string): NamespaceNames {
  const hash = hex(`${tenantId}/${namespace}`, 20);
  return {
    hash,
    stream: `${prefix}_${hash}`,
    subjects: `${prefix}.${hash}.>`,
    unkeyedSubject: `${prefix}.${hash}.u`,
    keyedSubject: (partition) => `${prefix}.${hash}.k.${partition}`,
    unkeyedConsumer: `${prefix}_u`,
    keyedConsumer: (partition) => `${prefix}_k${partition}`,
  };
}

export function partitionOf(key: string): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % KEY_PARTITIONS;
}

/** The subject a message of this namespace and key is published on. */
export function subjectOf(names: NamespaceNames, key: string | null): string {
  return key === null ? names.unkeyedSubject : names.keyedSubject(partitionOf(key));
}

/** The KV key of a message's state: `${hash}.${base64url(messageId)}` (KV keys allow [-/_=.a-zA-Z0-9]). */
export function stateKey(names: NamespaceNames, messageId: string): string {
  return `${names.hash}.${Buffer.from(messageId, 'utf8').toString('base64url')}`;
}

/** The KV bucket that holds every message's state. */
export function bucketName(prefix: string): string {
  return `${prefix}_state`;
}

/** Valid as a subject token, a stream name part and a bucket name part. */
export function assertPrefix(prefix: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`invalid nats-jetstream prefix: ${prefix}`);
}
