import type { JetStreamManager } from '@nats-io/jetstream';
import type { Core } from './core.ts';
import { bucketName, type NamespaceNames } from './names.ts';

// The retirement of a namespace that moved off NATS (README.md, Retirement; ../stream/prune.ts).

/**
 * A retired namespace's stream refuses every message (README.md, Retirement): it takes none
 * larger than one byte, and an envelope is larger. JetStream checks it as it stores a message,
 * so a publish is stored before a retire, or refused after it.
 */
const RETIRED_MAX_MSG_SIZE = 1;

/** JetStream refused a publish for its size: the stream is retired (no envelope is that small). */
export function isRetiredRefusal(err: unknown): boolean {
  const e = err as { code?: unknown; api_error?: { err_code?: unknown } } | undefined;
  return e?.code === 10054 || e?.api_error?.err_code === 10054;
}

/** Whether the namespace's stream exists and is retired (refuses every message). */
export async function isRetired(jsm: JetStreamManager, names: NamespaceNames): Promise<boolean> {
  try {
    return (await jsm.streams.info(names.stream)).config.max_msg_size === RETIRED_MAX_MSG_SIZE;
  } catch (err) {
    if ((err as { code?: unknown }).code === 404 || /not found/i.test(String((err as Error).message)))
      return false;
    throw err;
  }
}

export async function streamState(core: Core, names: NamespaceNames) {
  await core.ensureStream(names);
  return (await core.jsm()).streams.info(names.stream);
}

export async function setMaxMsgSize(core: Core, names: NamespaceNames, size: number): Promise<void> {
  const jsm = await core.jsm();
  const { config } = await jsm.streams.info(names.stream);
  if (config.max_msg_size !== size) await jsm.streams.update(names.stream, { ...config, max_msg_size: size });
}

/**
 * Retires the namespace when its stream is empty: a work-queue stream keeps exactly what is not
 * yet acknowledged (due, delayed by a nak, retrying, in flight), and a message leaves it only once
 * its state is delivered or dead. The stream then refuses messages (RETIRED_MAX_MSG_SIZE) and is
 * looked at again: one stored in between (a write racing the retire) puts its size back and
 * answers false. Once retired, the namespace's KV states go (its sweep no longer runs): those of
 * finished messages, and any a write left before a publish that never came.
 *
 * Once `signal` is aborted (the prune gave up waiting and let go of the namespace's row), it stops
 * before the next step that closes the stream or purges the states (a reopen may come in between,
 * and writes after it), putting back only the size it set. A stream left closed but not purged
 * is retired again, and purged, by the next prune.
 */
export async function retireNamespace(
  core: Core,
  names: NamespaceNames,
  signal?: AbortSignal,
): Promise<boolean> {
  if ((await streamState(core, names)).state.messages > 0) return false;
  signal?.throwIfAborted();
  await setMaxMsgSize(core, names, RETIRED_MAX_MSG_SIZE);
  if ((await (await core.jsm()).streams.info(names.stream)).state.messages > 0) {
    await setMaxMsgSize(core, names, -1);
    return false;
  }
  signal?.throwIfAborted();
  const jsm = await core.jsm();
  await core.kv();
  const bucket = bucketName(core.options.prefix);
  await jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${names.hash}.>` });
  return true;
}
