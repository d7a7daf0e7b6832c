import type { FastifyReply, FastifyRequest } from 'fastify';
import { isIdempotencyKey, sendProblem } from '../platform/http/index.ts';
import { soldOut } from './admission-committer.ts';
import type { CampaignCache } from './campaign-cache.ts';
import { phaseOf } from './campaign-store.ts';
import type { SoldOutMemoryGate } from './sold-out-memory.ts';
import type { AttemptStats } from './stats.ts';

/** The admission route, as Fastify names it. */
const ADMISSION_ROUTE = '/api/v1/flash-sales/:id/orders';

/** The subject and tenant an access token claims, read without verifying it; undefined when it is no JWT. */
function claimsOf(authorization: string | undefined): { sub: string; tid: string } | undefined {
  if (!authorization?.startsWith('Bearer ')) return undefined;
  const parts = authorization.slice(7).split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as {
      sub?: unknown;
      tid?: unknown;
    };
    return typeof payload.sub === 'string' && typeof payload.tid === 'string'
      ? { sub: payload.sub, tid: payload.tid }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A sold-out sale answered before the caller's token is verified (MercatoModule.beforeAuth): after
 * the last unit, an attempt costs route matching and a look into process memory, not an Ed25519
 * check and a session read (the CDN's "sold out" page, in the API). Safe because the answer
 * changes nothing and tells nothing a shopper could not see: whether a sale (known by its id, in
 * the tenant the token names) is sold out, the same for every customer. Only when this process
 * read the sale in the last second and its sold-out memory answers for it; an
 * attempt whose key was admitted (a replay: it must find its order), a token that is no JWT, or any
 * doubt goes the whole way (verified, then the gate). What the early answer lets an unverified
 * caller learn: that the sale is sold out, and, by the 401 a replay's whole way gives a forged
 * token, whether a key was admitted; but only for the customer the token claims and under that
 * customer's own key (the gate dedupes per customer), so a probe without both learns nothing.
 * Its answers are counted apart as unverified (the token may be forged), never as attempts.
 */
export function soldOutAnswer(
  gate: SoldOutMemoryGate,
  cache: CampaignCache,
  stats: Pick<AttemptStats, 'recordUnverified'>,
) {
  return (request: FastifyRequest, reply: FastifyReply): boolean => {
    if (request.method !== 'POST' || request.routeOptions.url !== ADMISSION_ROUTE) return false;
    const key = request.headers['idempotency-key'];
    if (!isIdempotencyKey(key)) return false;
    const claims = claimsOf(request.headers.authorization);
    if (!claims) return false;
    const id = String((request.params as { id?: unknown }).id ?? '').toLowerCase();
    const campaign = cache.peek(claims.tid.toLowerCase(), id);
    if (!campaign || phaseOf(campaign) !== 'live') return false;
    // SOLD_OUT even for a customer at the limit (true as well): what the claimed customer holds is
    // told only once their token is verified, and no answer here differs by customer.
    if (!gate.soldOutFor(campaign.id, claims.sub.toLowerCase(), key, campaign.perCustomerLimit)) return false;
    // Counted apart: the token is unverified (anyone knowing the sale's id can send one), so it must
    // not count as a customer's attempt in the stats, their stream or the conversion.
    stats.recordUnverified(campaign.id);
    reply.header('x-request-id', request.id);
    sendProblem(request, reply, soldOut(campaign));
    return true;
  };
}
