import type { KV } from '@nats-io/kv';
import { idempotencyConflict } from '../postgres/group-commit.ts';
import { BackendTimeoutError } from '../stream/bounded.ts';
import {
  NamespaceRetiredError,
  type NewMessageRow,
  outcomeOf,
  streamMessageOf,
  type WriteOutcome,
} from '../stream/contract.ts';
import type { Core } from './core.ts';
import { namespaceNames, stateKey, subjectOf } from './names.ts';
import { isRetiredRefusal } from './retire.ts';
import {
  type Envelope,
  encodeJson,
  isWrongRevision,
  newState,
  readState,
  type StoredState,
} from './state.ts';

// The append of the NATS JetStream backend (README.md, Semantics).

/** Where an append got to: once `sent`, a failure may come after JetStream stored a message. */
export type AppendProgress = { sent: boolean };

/**
 * Whether a failed publish got no answer from the server, so that JetStream may have stored the
 * message (a publish whose ack was lost, or that the client sends after a reconnect): the
 * client's own timeout (TimeoutError), the connection lost or closed while it waited
 * (RequestError "connection disconnected", "cancelled", ...). An answer says it was not stored:
 * a JetStream API error (the retired namespace's 10054 among them), no responders (no stream
 * takes the subject, JetStream not enabled: 503), or a refusal of the client before sending.
 */
export function isUnanswered(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (isRetiredRefusal(err)) return false;
  const answered = [
    'JetStreamApiError',
    'JetStreamError',
    'JetStreamNotEnabled',
    'StreamNotFoundError',
    'NoRespondersError',
    'InvalidArgumentError',
    'InvalidSubjectError',
    'PermissionViolationError',
  ];
  if (answered.includes(err.name)) return false;
  if (err.name === 'RequestError' && err.cause instanceof Error && err.cause.name === 'NoRespondersError')
    return false;
  return true;
}

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

/**
 * Appends `rows` (StreamBackend.append). A publish that got no answer (isUnanswered) throws
 * BackendTimeoutError, never BackendUnavailableError: its message may be stored, so the rows must
 * not go to a fallback, where they would be stored (and delivered) a second time. Its caller
 * appends them here again, where one stored is a replay (JetStream drops a re-publish of its
 * Nats-Msg-Id). It takes precedence over a retired refusal of other rows of the batch: one of
 * those got no answer may have been stored before the retire.
 */
export async function append(
  core: Core,
  rows: NewMessageRow[],
  revive: boolean,
  progress: AppendProgress,
): Promise<WriteOutcome[]> {
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
  if (toPublish.length > 0) progress.sent = true;
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
  const unanswered = [...failed.values()].filter(isUnanswered);
  const refused = toPublish.filter((p) => failed.has(p) && isRetiredRefusal(failed.get(p)));
  if (unanswered.length > 0) {
    await markPublished();
    const first = unanswered[0] as Error;
    throw new BackendTimeoutError(
      'nats-jetstream',
      `append: ${unanswered.length} of ${toPublish.length} publishes got no answer (stored or not, unknown): ${first.message}`,
      { cause: first },
    );
  }
  if (refused.length > 0) {
    // The namespace was retired here (it moved): what this call wrote to the KV for them goes
    // (best effort: a retire let go of the namespace's states already), and the writer writes
    // where the namespace is now. The publishes go one after another, so a retire may have come
    // between two of them: one stored before it stays and is delivered here (or already was), as
    // is a replay of one stored before this call. The error says which (`stored`): those are not
    // written again elsewhere, where they would be delivered a second time. (A publish with no
    // answer, stored or not, was thrown above as BackendTimeoutError.)
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
