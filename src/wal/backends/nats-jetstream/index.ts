import type { NatsConnection } from '@nats-io/transport-node';
import type { StreamBackend, StreamConsumer } from '../stream/contract.ts';
import { type AppendProgress, append } from './append.ts';
import { startConsumer } from './consumer.ts';
import { createCore } from './core.ts';
import { assertPrefix, bucketName, namespaceNames, stateKey } from './names.ts';
import { isRetired, retireNamespace, setMaxMsgSize, streamState } from './retire.ts';
import { decodeJson, type Envelope, readState, viewOf, withTimeout } from './state.ts';

export type NatsJetStreamBackendOptions = {
  /** Prefix of streams, subjects, consumers and the KV bucket; default 'mercato_wal'. */
  prefix?: string;
  /** Replicas of the streams and the bucket; default 1. */
  replicas?: number;
  /** Timeout of each JetStream request in ms; default 2000. */
  timeoutMs?: number;
};

/** The NATS JetStream backend: a stream per (tenant, namespace), state in one KV bucket (see README.md). */
export function createNatsJetStreamBackend(
  nc: NatsConnection,
  options: NatsJetStreamBackendOptions = {},
): StreamBackend {
  const prefix = options.prefix ?? 'mercato_wal';
  assertPrefix(prefix);
  const core = createCore(nc, {
    prefix,
    replicas: options.replicas ?? 1,
    timeoutMs: options.timeoutMs ?? 2_000,
  });
  const consumers = new Set<StreamConsumer>();
  const streamPattern = new RegExp(`^${prefix}_[0-9a-f]{20}$`);

  return {
    name: 'nats-jetstream',
    append(rows, appendOptions) {
      if (rows.length === 0) return Promise.resolve([]);
      const progress: AppendProgress = { sent: false };
      // No answer: BackendTimeoutError, never a reason to write elsewhere. Once its publishes are
      // sent, a lost connection leaves them stored or not too (core.ts guard, append.ts).
      return core.guard('append', () => append(core, rows, appendOptions?.revive === true, progress), {
        noAnswer: true,
        sent: () => progress.sent,
      });
    },
    find(tenantId, namespace, messageId) {
      return core.guard('find', async () => {
        const kv = await core.kv();
        const found = await readState(kv, stateKey(namespaceNames(prefix, tenantId, namespace), messageId));
        return found ? viewOf(found.state) : undefined;
      });
    },
    async consume(deps) {
      const consumer = await startConsumer(core, deps);
      const handle: StreamConsumer = {
        async stop() {
          consumers.delete(handle);
          await consumer.stop();
        },
      };
      consumers.add(handle);
      return handle;
    },
    lag() {
      // Work-queue streams keep exactly the messages not yet acknowledged (due or not, in flight or not).
      return core.guard('lag', async () => {
        const jsm = await core.jsm();
        let messages = 0;
        let oldest = Number.POSITIVE_INFINITY;
        for await (const info of jsm.streams.list(`${prefix}.>`)) {
          if (!streamPattern.test(info.config.name) || info.state.messages === 0) continue;
          messages += info.state.messages;
          oldest = Math.min(oldest, Date.parse(info.state.first_ts));
        }
        return { messages, oldestMs: messages === 0 ? 0 : Math.max(0, Date.now() - oldest) };
      });
    },
    ping() {
      // No answer (BackendTimeoutError) is told from a refusal, as the callers wait for it (bounded.ts).
      return core.guard(
        'ping',
        async () => {
          await withTimeout(core.nc.flush(), core.options.timeoutMs, 'flush');
          await (await core.jsm()).getAccountInfo();
        },
        { noAnswer: true },
      );
    },
    follow(tenantId, namespace, onMessage) {
      const names = namespaceNames(prefix, tenantId, namespace);
      return core.guard('follow', async () => {
        const kv = await core.kv();
        // A core subscription sees what is published to the stream's subjects, apart from its consumers.
        const subscription = core.nc.subscribe(names.subjects);
        const reading = (async () => {
          for await (const msg of subscription) {
            try {
              const envelope = decodeJson<Envelope>(msg.data);
              const found = await readState(kv, envelope.key);
              if (found) onMessage(found.state.message);
            } catch {
              // Not an envelope, or its state is gone: nothing to show.
            }
          }
        })();
        await core.nc.flush();
        return {
          async stop() {
            subscription.unsubscribe();
            await reading;
          },
        };
      });
    },
    retire(tenantId, namespace, retireOptions) {
      const names = namespaceNames(prefix, tenantId, namespace);
      return core.guard('retire', () => retireNamespace(core, names, retireOptions?.signal));
    },
    reopen(tenantId, namespace) {
      const names = namespaceNames(prefix, tenantId, namespace);
      return core.guard('reopen', async () => {
        await streamState(core, names);
        await setMaxMsgSize(core, names, -1);
      });
    },
    drop(tenantId, namespace, dropOptions) {
      const names = namespaceNames(prefix, tenantId, namespace);
      return core.guard('drop', async () => {
        const jsm = await core.jsm();
        if (dropOptions?.onlyRetired && !(await isRetired(jsm, names))) return;
        try {
          await jsm.streams.delete(names.stream);
        } catch (err) {
          if (!/not found/i.test(String((err as Error).message))) throw err;
        }
        core.forgetStream(names);
        // The namespace's message states: every KV key under its hash, one purge.
        await core.kv();
        const bucket = bucketName(prefix);
        await jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${names.hash}.>` });
      });
    },
    async close() {
      await Promise.allSettled([...consumers].map((c) => c.stop()));
      core.close();
    },
  };
}
