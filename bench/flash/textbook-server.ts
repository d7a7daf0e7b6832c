/**
 * The textbook flash-sale design, the peer of `npm run bench:flash`, a child process of its own:
 * Fastify; the customer's Bearer token verified on every attempt with jose (the same EdDSA tokens
 * Mercato takes, checked with the public key of the key that signed them: signature, typ, issuer,
 * audience, expiry); then one Lua script on Redis per attempt: units left? the customer under the
 * limit? then `HINCRBY` the customer and `DECR` the units. 202 with a random order id, or 409
 * SOLD_OUT / LIMIT_REACHED (problem+json). No durable record (the order exists only as a Redis
 * counter), no idempotency, no sold-out shortcut: every attempt makes the round trip.
 *
 * The sale is set up by the bench: `<prefix>{<sale id>}:remaining` holds the units; customers
 * admitted go into the hash `<prefix>{<sale id>}:customers`.
 * Env: REDIS_URL, BENCH_REDIS_PREFIX, BENCH_JWT_PUBLIC_JWK (a JWK with kid), BENCH_LIMIT (units per
 * customer, 1), BENCH_JWT_ISSUER (mercato), BENCH_JWT_AUDIENCE (mercato-api).
 * Prints `TEXTBOOK http://host:port` once listening.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { importJWK, type JWK, jwtVerify } from 'jose';

const env = process.env;
const prefix = env['BENCH_REDIS_PREFIX'] ?? 'textbook:';
const limit = Number(env['BENCH_LIMIT'] ?? 1);
const issuer = env['BENCH_JWT_ISSUER'] ?? 'mercato';
const audience = env['BENCH_JWT_AUDIENCE'] ?? 'mercato-api';
const jwk = JSON.parse(env['BENCH_JWT_PUBLIC_JWK']!) as JWK;
const publicKey = await importJWK(jwk, 'EdDSA');

// KEYS: remaining, customers. ARGV: customer id, limit. 1+: units left after this one; -1 sold out; -2 at the limit.
const ADMIT = `
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return -1 end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held >= tonumber(ARGV[2]) then return -2 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return redis.call('DECR', KEYS[1])
`;

type Admitting = Redis & {
  admit(remaining: string, customers: string, customer: string, limit: number): Promise<number>;
};
const redis = new Redis(env['REDIS_URL'] ?? 'redis://127.0.0.1:6379') as Admitting;
redis.defineCommand('admit', { numberOfKeys: 2, lua: ADMIT });

const problem = (status: number, code: string, title: string) =>
  JSON.stringify({ type: 'about:blank', title, status, code });
const SOLD_OUT = problem(409, 'SOLD_OUT', 'the sale is sold out');
const LIMIT_REACHED = problem(409, 'LIMIT_REACHED', "you hold this sale's limit");
const UNAUTHORIZED = problem(401, 'INVALID_TOKEN', 'access token is invalid or expired');
const WINDOW_MS = 3_600_000;

const app = Fastify({ logger: false });
app.post<{ Params: { id: string } }>('/api/v1/flash-sales/:id/orders', async (request, reply) => {
  const header = request.headers.authorization;
  let customer: string | undefined;
  try {
    if (!header?.startsWith('Bearer ')) throw new Error('no token');
    const { payload } = await jwtVerify(header.slice(7), publicKey, {
      algorithms: ['EdDSA'],
      typ: 'at+jwt',
      issuer,
      audience,
      requiredClaims: ['sub', 'exp'],
    });
    customer = payload.sub;
  } catch {}
  if (!customer) return reply.code(401).type('application/problem+json').send(UNAUTHORIZED);
  const sale = `${prefix}{${request.params.id}}`;
  const left = await redis.admit(`${sale}:remaining`, `${sale}:customers`, customer, limit);
  if (left === -1) return reply.code(409).type('application/problem+json').send(SOLD_OUT);
  if (left === -2) return reply.code(409).type('application/problem+json').send(LIMIT_REACHED);
  const now = Date.now();
  return reply
    .code(202)
    .type('application/json; charset=utf-8')
    .send(
      `{"orderId":"${randomUUID()}","campaignId":"${request.params.id}","quantity":1,"status":"admitted",` +
        `"paymentDeadline":"${new Date(now + WINDOW_MS).toISOString()}","admittedAt":"${new Date(now).toISOString()}"}`,
    );
});

const address = await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`TEXTBOOK ${address}`);
process.on('SIGTERM', () => {
  void app.close().then(() => {
    redis.disconnect();
    process.exit(0);
  });
});
