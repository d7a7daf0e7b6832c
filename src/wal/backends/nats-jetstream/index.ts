import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { idempotencyConflict } from '../postgres/group-commit.ts';
import {
  NamespaceRetiredError,
  type NewMessageRow,
  outcomeOf,
  type StreamBackend,
  type StreamConsumer,
  streamMessageOf,
  type WriteOutcome,
} from '../stream/contract.ts';
import { startConsumer } from './consumer.ts';
import { type Core, createCore } from './core.ts';
import { assertPrefix, bucketName, namespaceNames, stateKey, subjectOf } from './names.ts';
import { isRetired, isRetiredRefusal, retireNamespace, setMaxMsgSize, streamState } from './retire.ts';
import {
  decodeJson,
  type Envelope,
  encodeJson,
  isWrongRevision,
  newState,
  readState,
  type StoredState,
  viewOf,
  withTimeout,
} from './state.ts';

export type NatsJetStreamBackendOptions = {
  /** Prefix of streams, subjects, consumers and the KV bucket; default 'mercato_wal'. */
  prefix?: string;
  /** Replicas of the streams and the bucket; default 1. */
  replicas?: number;
  /** Timeout of each JetStream request in ms; default 2000. */
  timeoutMs?: number;
};

/** What append does for one row after reading its stored state. */
type Plan = {
  row: NewMessageRow;
  key: string;
  subject: string;
  /** The state to write (new or revived); undefined for a replay. */
  write?: { state: StoredState; create: boolean; revision: number };
  /** The stored state (for a replay) or the written one. */
  state: StoredState;
  revision: number;
  publish: boolean;
  replayed: boolean;
};

function msgIdOf(state: StoredState): string {
  return state.generation === 0 ? state.message.id : `${state.message.id}:${state.generation}`;
}

async function planRows(
  kv: KV,
  core: Core,
  rows: NewMessageRow[],
  revive: boolean,
): Promise<{ plans: Plan[]; conflicts: string[] }> {
  const prefix = core.options.prefix;
  const located = rows.map((row) => {
    const names = namespaceNames(prefix, row.tenant_id, row.namespace);
    return { row, names, key: stateKey(names, row.message_id), subject: subjectOf(names, row.ordering_key) };
  });
  await Promise.all(
    [...new Map(located.map((l) => [l.names.stream, l.names])).values()].map(core.ensureStream),
  );
  const stored = await Promise.all(located.map((l) => readState(kv, l.key)));
  const plans: Plan[] = [];
  const conflicts: string[] = [];
  const seen = new Map<string, Plan>();
  located.forEach((l, i) => {
    const earlier = seen.get(l.key);
    const found = earlier ? { state: earlier.state, revision: earlier.revision } : stored[i];
    if (found && found.state.message.requestHash !== l.row.request_hash) {
      conflicts.push(l.row.message_id);
      return;
    }
    let plan: Plan;
    if (earlier) {
      plan = { ...l, state: earlier.state, revision: earlier.revision, publish: false, replayed: true };
    } else if (!found) {
      const state = newState(streamMessageOf(l.row), l.row.state);
      plan = {
        ...l,
        write: { state, create: true, revision: 0 },
        state,
        revision: 0,
        publish: true,
        replayed: false,
      };
    } else if (revive && found.state.state === 'dead') {
      const state: StoredState = {
        ...found.state,
        message: { ...found.state.message, attempts: 0, dueAt: Date.now() },
        state: 'pending',
        deadAt: null,
        retryAt: null,
        leaseToken: null,
        published: false,
        generation: found.state.generation + 1,
      };
      plan = {
        ...l,
        write: { state, create: false, revision: found.revision },
        state,
        revision: found.revision,
        publish: true,
        replayed: false,
      };
    } else {
      // A replay; one whose first write never reached the stream (a crash in between) publishes it now.
      plan = { ...l, ...found, publish: !found.state.published, replayed: true };
    }
    seen.set(l.key, plan);
    plans.push(plan);
  });
  return { plans, conflicts };
}

async function append(core: Core, rows: NewMessageRow[], revive: boolean): Promise<WriteOutcome[]> {
  const kv = await core.kv();
  const { plans, conflicts } = await planRows(kv, core, rows, revive);
  if (conflicts.length > 0) throw idempotencyConflict(conflicts);
  // 1. The state first: a message in the stream always finds its state.
  await Promise.all(
    plans.map(async (p) => {
      if (!p.write) return;
      const data = encodeJson(p.write.state);
      try {
        p.revision = p.write.create
          ? await kv.create(p.key, data)
          : await kv.update(p.key, data, p.write.revision);
      } catch (err) {
        if (!isWrongRevision(err) && !/exists/i.test(String((err as Error).message))) throw err;
        // A concurrent write of the same messageId won the race: answer as a replay of it.
        const now = await readState(kv, p.key);
        if (!now) throw err;
        if (now.state.message.requestHash !== p.row.request_hash)
          throw idempotencyConflict([p.row.message_id]);
        Object.assign(p, {
          state: now.state,
          revision: now.revision,
          publish: !now.state.published,
          replayed: true,
        });
      }
    }),
  );
  // 2. Publish the batch at once (pipelined on the connection, in row order), then await every ack.
  const toPublish = plans.filter((p) => p.publish);
  const published = await Promise.allSettled(
    toPublish.map((p) => {
      const envelope: Envelope = { key: p.key, id: p.state.message.id, generation: p.state.generation };
      return core.js.publish(p.subject, encodeJson(envelope), {
        msgID: msgIdOf(p.state),
        timeout: core.options.timeoutMs,
      });
    }),
  );
  const failed = new Map<Plan, unknown>();
  toPublish.forEach((p, i) => {
    const result = published[i]!;
    if (result.status === 'rejected') failed.set(p, result.reason);
  });
  // 3. Mark them published (best effort: a consumer that got there first already did, and wins the CAS).
  const markPublished = () =>
    Promise.all(
      toPublish
        .filter((p) => !failed.has(p))
        .map((p) =>
          kv.update(p.key, encodeJson({ ...p.state, published: true }), p.revision).catch(() => undefined),
        ),
    );
  const refused = toPublish.filter((p) => failed.has(p) && isRetiredRefusal(failed.get(p)));
  if (refused.length > 0) {
    // The namespace was retired here (it moved): what this call wrote to the KV for them goes
    // (best effort: a retire let go of the namespace's states already), and the writer writes
    // where the namespace is now. The publishes go one after another, so a retire may have come
    // between two of them: one stored before it stays and is delivered here (or already was), as
    // is a replay of one stored before this call. The error says which (`stored`): those are not
    // written again elsewhere, where they would be delivered a second time. One whose publish
    // failed otherwise (a timeout: stored or not, nobody knows) counts as not stored.
    await Promise.all(
      refused.map((p) =>
        p.write ? kv.delete(p.key, { previousSeq: p.revision }).catch(() => undefined) : undefined,
      ),
    );
    await markPublished();
    // By key: a messageId twice in the batch is one message, stored or not.
    const notStored = new Set([...failed.keys()].map((p) => p.key));
    const stored = plans.map((p) =>
      notStored.has(p.key)
        ? undefined
        : outcomeOf(p.state.message, 'nats-jetstream', p.state.state, p.replayed),
    );
    const first = refused[0]!.row;
    throw new NamespaceRetiredError('nats-jetstream', first.tenant_id, first.namespace, stored);
  }
  for (const reason of failed.values()) throw reason;
  await markPublished();
  return plans.map((p) => outcomeOf(p.state.message, 'nats-jetstream', p.state.state, p.replayed));
}

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
      return core.guard('append', () => append(core, rows, appendOptions?.revive === true));
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
      return core.guard('ping', async () => {
        await withTimeout(core.nc.flush(), core.options.timeoutMs, 'flush');
        await (await core.jsm()).getAccountInfo();
      });
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
