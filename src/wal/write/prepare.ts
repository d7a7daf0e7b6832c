import { hash } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import { AppError, type FieldError } from '../../platform/http/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import type { NewMessageRow, StoredMessage } from '../backends/postgres/group-commit.ts';
import { MAX_LISTED_ERRORS, type Namespace, namespaceValidator, type Target } from '../namespaces/index.ts';
import type { BackendName } from '../tables.ts';
import { messageType, takesMessage } from '../targets/cloud-event.ts';

/** One message as a producer writes it (the body of POST /wal/write without `namespace`). */
export type MessageInput = {
  payload: unknown;
  lifecycle?: { delay?: number; maxAttempts?: number } | undefined;
  /** Ordering key: messages with the same key are delivered in order. */
  key?: string | undefined;
  /** The caller's id; writing it again with the same body is a no-op. Default: the generated id. */
  messageId?: string | undefined;
  headers?: Record<string, string> | undefined;
};

/** The answer to one write (202). */
export type WriteReceipt = {
  messageId: string;
  status: 'accepted' | 'scheduled';
  durabilityStatus: 'persisted' | 'scheduled';
  backend: BackendName;
  /** When the message was first written. */
  timestamp: string;
  /** When delivery is due. */
  estimatedProcessingTime: string;
};

// The message each row was made from (toRows), so a delivery in the writer's process (inline
// delivery) takes its payload and headers as they are instead of parsing the row's text again.
const rowMessages = new WeakMap<NewMessageRow, MessageInput>();

/** The message toRows made this row from, if it did. */
export const messageOfRow = (row: NewMessageRow): MessageInput | undefined => rowMessages.get(row);

// The payload's JSON text, made once per message for both the size check and the row.
const payloadTexts = new WeakMap<MessageInput, string>();
function payloadJson(m: MessageInput): string {
  let text = payloadTexts.get(m);
  if (text === undefined) {
    text = JSON.stringify(m.payload ?? null);
    payloadTexts.set(m, text);
  }
  return text;
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === 'function') return canonicalJson(json.call(value));
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  // sort() without a comparator orders strings by UTF-16 code units, as `<` does.
  const keys = Object.keys(value).sort();
  let text = '';
  for (const key of keys) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined) continue;
    text += `${text === '' ? '' : ','}${JSON.stringify(key)}:${canonicalJson(v)}`;
  }
  return `{${text}}`;
}

/**
 * True when JSON.stringify(value) is already its canonical JSON: every object's keys in sorted
 * order, no undefined inside, nothing with its own toJSON. Checking costs far less than sorting
 * and writing the text again, and producers' payloads usually pass.
 */
function alreadyCanonical(value: unknown): boolean {
  if (value === null) return true;
  const type = typeof value;
  if (type !== 'object') return type === 'string' || type === 'number' || type === 'boolean';
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(value)) {
    for (const v of value) if (!alreadyCanonical(v)) return false;
    return true;
  }
  let previous: string | undefined;
  for (const key of Object.keys(value as object)) {
    if (previous !== undefined && !(previous < key)) return false;
    if (!alreadyCanonical((value as Record<string, unknown>)[key])) return false;
    previous = key;
  }
  return true;
}

/**
 * sha256 of the canonical JSON of what defines a message: a replay must match it exactly. The
 * text is canonicalJson({namespace, payload, key, headers, delay, maxAttempts}), written here with
 * the keys in their sorted order so that an already canonical payload's JSON is used as it is.
 */
export function requestHash(namespace: string, input: MessageInput): string {
  const { headers, key, lifecycle } = input;
  const head =
    `{"delay":${canonicalJson(lifecycle?.delay ?? 0)},"headers":${headers === undefined ? '{}' : canonicalJson(headers)},` +
    `"key":${key === undefined ? 'null' : canonicalJson(key)},"maxAttempts":${canonicalJson(lifecycle?.maxAttempts ?? null)},` +
    `"namespace":${JSON.stringify(namespace)}`;
  const { payload } = input;
  const body =
    payload === undefined
      ? `${head}}`
      : `${head},"payload":${alreadyCanonical(payload) ? payloadJson(input) : canonicalJson(payload)}}`;
  return hash('sha256', body, 'hex');
}

/**
 * The request hash of a message whose messageId was just made (a domain event's UUIDv7): no other
 * write can ever replay it, so its text as written serves, without canonicalJson's sorting (the
 * cost of the hash for a large event).
 */
function freshHash(namespace: string, input: MessageInput): string {
  const { headers, key, lifecycle } = input;
  const text = `${namespace}\u0000${key ?? ''}\u0000${lifecycle?.delay ?? 0}\u0000${lifecycle?.maxAttempts ?? ''}\u0000${
    headers === undefined ? '{}' : JSON.stringify(headers)
  }\u0000${payloadJson(input)}`;
  return hash('sha256', text, 'hex');
}

/** The namespace's compiled payload validator (compiled once per namespace version). */
function validatorOf(namespace: Namespace): ValidateFunction | undefined {
  try {
    return namespaceValidator(namespace);
  } catch (error) {
    throw new AppError(
      'CONFLICT',
      `the payload schema of namespace ${namespace.name} does not compile`,
      {},
      {
        cause: error,
      },
    );
  }
}

const escapePointer = (token: string) => token.replaceAll('~', '~0').replaceAll('/', '~1');

/** Ajv errors as field errors, each pointing into the request body under `base` (`/payload`). */
function schemaErrors(validate: ValidateFunction, base: string): FieldError[] {
  const byPointer = new Map<string, string[]>();
  for (const error of validate.errors ?? []) {
    let pointer = `${base}${error.instancePath}`;
    let message = error.message ?? 'is invalid';
    const params = error.params as Record<string, unknown>;
    if (error.keyword === 'required' && typeof params['missingProperty'] === 'string') {
      pointer += `/${escapePointer(params['missingProperty'])}`;
      message = `missing field ${JSON.stringify(params['missingProperty'])}`;
    } else if (error.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
      pointer += `/${escapePointer(params['additionalProperty'])}`;
      message = `unknown field ${JSON.stringify(params['additionalProperty'])}`;
    }
    const messages = byPointer.get(pointer) ?? [];
    if (!messages.includes(message)) messages.push(message);
    byPointer.set(pointer, messages);
  }
  return [...byPointer].map(([pointer, messages]) => ({ in: 'body', pointer, message: messages.join('; ') }));
}

/** Refuses a disabled namespace (409 NAMESPACE_DISABLED). */
export function requireEnabled(namespace: Namespace): void {
  if (!namespace.enabled) {
    throw new AppError('NAMESPACE_DISABLED', `namespace ${namespace.name} is disabled; writes are refused`);
  }
}

/**
 * Validates messages against the namespace in the documented order, all of them before any is
 * written: 413 PAYLOAD_TOO_LARGE (payload JSON over maxPayloadBytes), 422 PAYLOAD_SCHEMA_MISMATCH
 * (one error per JSON pointer), 422 DELAY_TOO_LONG. `pointerOf(i)` names message i in the request
 * (`` for a single write, `/messages/3` in a batch). Also refuses a messageId repeated in one
 * request (400 VALIDATION_FAILED).
 */
export function validateMessages(
  namespace: Namespace,
  messages: MessageInput[],
  pointerOf: (index: number) => string,
): void {
  const sizes = messages.map((m) => Buffer.byteLength(payloadJson(m)));
  const tooLarge = sizes.findIndex((size) => size > namespace.maxPayloadBytes);
  if (tooLarge >= 0) {
    const pointer = `${pointerOf(tooLarge)}/payload`;
    throw new AppError(
      'PAYLOAD_TOO_LARGE',
      `payload at ${pointer} is ${sizes[tooLarge]} bytes of JSON; namespace ${namespace.name} allows ${namespace.maxPayloadBytes}`,
      {
        errors: [
          { in: 'body', pointer, message: `must be at most ${namespace.maxPayloadBytes} bytes of JSON` },
        ],
      },
    );
  }
  const validate = validatorOf(namespace);
  if (validate) {
    // At most MAX_LISTED_ERRORS are listed (the validator stops looking for more).
    const errors: FieldError[] = [];
    for (const [i, m] of messages.entries()) {
      if (errors.length >= MAX_LISTED_ERRORS) break;
      if (validate(m.payload)) continue;
      for (const error of schemaErrors(validate, `${pointerOf(i)}/payload`)) errors.push(error);
    }
    if (errors.length > 0) {
      const listed = errors.slice(0, MAX_LISTED_ERRORS);
      const more = errors.length >= MAX_LISTED_ERRORS;
      throw new AppError(
        'PAYLOAD_SCHEMA_MISMATCH',
        `${more ? `at least ${listed.length}` : listed.length} payload field(s) do not match the schema of namespace ${namespace.name}`,
        { errors: listed },
      );
    }
  }
  const delayErrors: FieldError[] = [];
  messages.forEach((m, i) => {
    const delay = m.lifecycle?.delay ?? 0;
    if (delay > namespace.maxDelayMs) {
      const message = `must be at most ${namespace.maxDelayMs} ms`;
      delayErrors.push({ in: 'body', pointer: `${pointerOf(i)}/lifecycle/delay`, message });
    }
  });
  if (delayErrors.length > 0) {
    throw new AppError(
      'DELAY_TOO_LONG',
      `delay exceeds the maximum of namespace ${namespace.name} (${namespace.maxDelayMs} ms)`,
      { errors: delayErrors },
    );
  }
  const seen = new Map<string, number>();
  const repeated: FieldError[] = [];
  messages.forEach((m, i) => {
    if (m.messageId === undefined) return;
    const first = seen.get(m.messageId);
    if (first === undefined) seen.set(m.messageId, i);
    else {
      const message = `repeats the messageId of ${pointerOf(first)}`;
      repeated.push({ in: 'body', pointer: `${pointerOf(i)}/messageId`, message });
    }
  });
  if (repeated.length > 0) {
    throw new AppError('VALIDATION_FAILED', 'a messageId appears more than once in the request', {
      errors: repeated,
    });
  }
}

/**
 * The rows to insert for validated messages: due now (pending) or after their delay (scheduled).
 * A postgres-backend message due now in an enabled namespace with no enabled target its type
 * matches (every target's `types` filter leaves it out, or there is none) has nothing to deliver:
 * it is stored delivered (what its first lease would record), as a log entry only.
 */
export function toRows(
  tenantId: string,
  namespace: Namespace,
  backend: BackendName,
  messages: MessageInput[],
  now = new Date(),
  /** Every messageId was just made (domain events): see freshHash. */
  freshIds = false,
  /** A target that passes messages[index] over though its types take it (a subscriber's `skips`). */
  declines?: (index: number, target: Target) => boolean,
): NewMessageRow[] {
  const enabled =
    backend === 'postgres' && namespace.enabled ? namespace.targets.filter((t) => t.enabled) : undefined;
  const due = (m: MessageInput, index: number): 'delivered' | 'pending' => {
    if (!enabled) return 'pending';
    const message = { headers: m.headers ?? {}, namespace: namespace.name };
    const type = messageType(message);
    const takes = (t: Target): boolean => takesMessage(t, message, type) && declines?.(index, t) !== true;
    return enabled.some(takes) ? 'pending' : 'delivered';
  };
  return messages.map((m, index) => {
    const id = uuidv7();
    const delay = m.lifecycle?.delay ?? 0;
    const row: NewMessageRow = {
      id,
      tenant_id: tenantId,
      namespace: namespace.name,
      message_id: m.messageId ?? id,
      ordering_key: m.key ?? null,
      payload: payloadJson(m),
      headers: m.headers === undefined ? '{}' : JSON.stringify(m.headers),
      request_hash: freshIds ? freshHash(namespace.name, m) : requestHash(namespace.name, m),
      backend,
      state: delay > 0 ? 'scheduled' : due(m, index),
      due_at: new Date(now.getTime() + delay),
      max_attempts: m.lifecycle?.maxAttempts ?? namespace.retry.maxAttempts,
      created_at: now,
    };
    rowMessages.set(row, m);
    return row;
  });
}

/** The receipt of a stored message; a replay answers what the first write answered. */
export function receiptOf(message: StoredMessage): WriteReceipt {
  const scheduled = message.dueAt.getTime() > message.createdAt.getTime();
  return {
    messageId: message.messageId,
    status: scheduled ? 'scheduled' : 'accepted',
    durabilityStatus: scheduled ? 'scheduled' : 'persisted',
    backend: message.backend,
    timestamp: message.createdAt.toISOString(),
    estimatedProcessingTime: message.dueAt.toISOString(),
  };
}
