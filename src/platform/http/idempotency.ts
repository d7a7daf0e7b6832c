import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Kysely, sql } from 'kysely';
import { AppError } from './errors.ts';
import { type RequestFingerprint, requestFingerprint } from './request-fingerprint.ts';

const KEY = /^[\x21-\x7e]{1,255}$/;
const TTL_HOURS = 24;

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Set false on a POST that creates something but must never replay its answer (a one-time
     * secret); true on a POST answering 200 whose repeat would act twice (a bulk retry).
     */
    idempotency?: boolean;
  }
  interface FastifyRequest {
    idempotency: { scope: string; key: string } | undefined;
  }
}

type Row = {
  request_hash: string;
  status_code: number | null;
  content_type: string | null;
  response: string | null;
};

/** Whether a header value is an Idempotency-Key of the form every route takes: 1 to 255 visible ASCII characters. */
export const isIdempotencyKey = (value: unknown): value is string =>
  typeof value === 'string' && KEY.test(value);

const malformedKey = () =>
  new AppError('VALIDATION_FAILED', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
    errors: [
      { in: 'headers', pointer: '/idempotency-key', message: 'must be 1 to 255 visible ASCII characters' },
    ],
  });

/**
 * The Idempotency-Key of a route that keeps its own record of it (config `idempotency: false`:
 * the platform stores nothing for it): required (400 IDEMPOTENCY_KEY_REQUIRED), and of the form
 * the platform takes (400 VALIDATION_FAILED).
 */
export function requiredIdempotencyKey(request: FastifyRequest, route: string): string {
  const header = request.headers['idempotency-key'];
  if (header === undefined || header === '') {
    throw new AppError('IDEMPOTENCY_KEY_REQUIRED', `${route} needs an Idempotency-Key header`, {
      errors: [{ in: 'headers', pointer: '/idempotency-key', message: 'is required' }],
    });
  }
  if (!isIdempotencyKey(header)) throw malformedKey();
  return header;
}

function scopeOf(request: FastifyRequest): string {
  const p = request.principal;
  // A guest cart's writes are scoped to its token too: two guests behind one address (or one
  // storefront's API key) never replay each other's answers. An anonymous guest is their token
  // alone: a retry from another network (a phone off the Wi-Fi) is still theirs.
  const token = request.headers['x-cart-token'];
  const cart =
    typeof token === 'string' && token !== ''
      ? `:cart:${createHash('sha256').update(token).digest('hex')}`
      : '';
  if (!p) return cart ? `guest${cart}` : `ip:${request.ip}`;
  return p.kind === 'user' ? `user:${p.userId}` : `key:${p.apiKeyId}${cart}`;
}

/** The HKDF info of the deployment key the platform's request hashes are made under (deriveServerKey). */
export const IDEMPOTENCY_KEY_INFO = 'mercato/idempotency/v1';

/**
 * The request as its key's record names it: method, URL (path and query) and the body, its keys in
 * any order; HMAC under `key` when there is one (a body may hold a password: registrations, staff
 * accounts, tenants).
 */
function fingerprint(request: FastifyRequest, key: Buffer | undefined): RequestFingerprint {
  return requestFingerprint(request.body ?? null, `${request.method} ${request.url}\n`, key);
}

/**
 * Honours `Idempotency-Key` on every POST route that answers 201 (or opts in with config
 * `idempotency: true`): the first answer (2xx or 4xx)
 * is stored and replayed to the same caller for the same key and body (with
 * `Idempotent-Replayed: true`); the same key with another body is a 409, and so is a key whose
 * first request is still running. A 5xx is not stored, so the caller may retry. The request is
 * stored as its HMAC under `key` (the deployment's, IDEMPOTENCY_KEY_INFO), never a bare hash a
 * password in it could be guessed against; without a key, as SHA-256.
 */
// biome-ignore lint/suspicious/noExplicitAny: the table belongs to the platform, not to a module's types.
export function registerIdempotency(app: FastifyInstance, db: Kysely<any>, key?: Buffer): void {
  app.decorateRequest('idempotency', undefined);
  // Most requests carry no Idempotency-Key: they pass without an async hook's promise.
  const claimKey = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers['idempotency-key'];
    const route = request.routeOptions;
    const schema = route.schema?.response as Record<string, unknown> | undefined;
    const optedIn = route.config?.idempotency === true;
    if ((!schema?.['201'] && !optedIn) || route.config?.idempotency === false) return;
    if (!isIdempotencyKey(header)) throw malformedKey();
    const scope = scopeOf(request);
    const print = fingerprint(request, key);
    const inserted = await sql<{ key: string }>`
      insert into platform.idempotency_keys (scope, key, request_hash, expires_at)
      values (${scope}, ${header}, ${print.hash}, now() + make_interval(hours => ${TTL_HOURS}))
      on conflict (scope, key) do update set
        request_hash = excluded.request_hash, status_code = null, response = null, created_at = now(),
        expires_at = excluded.expires_at
        where platform.idempotency_keys.expires_at < now()
          -- a claim whose request died with its process is abandoned after a minute
          or (platform.idempotency_keys.status_code is null
            and platform.idempotency_keys.created_at < now() - interval '60 seconds')
      returning key`.execute(db);
    if (inserted.rows.length === 1) {
      request.idempotency = { scope, key: header };
      return;
    }
    const { rows } = await sql<Row>`
      select request_hash, status_code, content_type, response from platform.idempotency_keys
      where scope = ${scope} and key = ${header}`.execute(db);
    const first = rows[0];
    if (!first || !print.matches(first.request_hash)) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with a different request');
    }
    if (first.status_code === null) {
      throw new AppError('CONFLICT', 'a request with this Idempotency-Key is still being processed', {
        retryAfterSeconds: 1,
      });
    }
    reply.code(first.status_code).header('idempotent-replayed', 'true');
    if (first.content_type) reply.type(first.content_type);
    return reply.send(first.response);
  };
  app.addHook('preHandler', (request, reply, done) => {
    if (request.headers['idempotency-key'] === undefined || request.method !== 'POST') return done();
    claimKey(request, reply).then(() => done(), done);
  });
  const record = async (reply: FastifyReply, payload: unknown, claim: { scope: string; key: string }) => {
    if (reply.statusCode >= 500 || reply.statusCode === 429) {
      await sql`delete from platform.idempotency_keys where scope = ${claim.scope} and key = ${claim.key}`.execute(
        db,
      );
    } else {
      const contentType = reply.getHeader('content-type');
      await sql`
        update platform.idempotency_keys
        set status_code = ${reply.statusCode}, content_type = ${typeof contentType === 'string' ? contentType : null},
          response = ${typeof payload === 'string' ? payload : null}
        where scope = ${claim.scope} and key = ${claim.key}`.execute(db);
    }
  };
  app.addHook('onSend', (request, reply, payload, done) => {
    const claim = request.idempotency;
    if (!claim) return done(null, payload);
    request.idempotency = undefined;
    record(reply, payload, claim).then(() => done(null, payload), done);
  });
}

/**
 * Deletes the answers stored for a user's Idempotency-Keys: their erasure, since an answer may
 * hold their personal data (an address they added, their profile) for the record's day.
 */
// biome-ignore lint/suspicious/noExplicitAny: see registerIdempotency.
export async function forgetUserAnswers(db: Kysely<any>, userId: string): Promise<void> {
  await sql`delete from platform.idempotency_keys where scope = ${`user:${userId}`}`.execute(db);
}

/** Deletes expired idempotency records; returns how many. */
// biome-ignore lint/suspicious/noExplicitAny: see registerIdempotency.
export async function purgeIdempotencyKeys(db: Kysely<any>): Promise<number> {
  const result = await sql`delete from platform.idempotency_keys where expires_at < now()`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
