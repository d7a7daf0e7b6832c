import { setTimeout as sleep } from 'node:timers/promises';
import type { Static } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError, clientKey, type RequestFingerprint, requestFingerprint } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { type Candidate, type Committed, limitReached, soldOut } from './admission-committer.ts';
import { type Admission, customersOf, gateStateOf } from './admission-store.ts';
import type { CampaignCache } from './campaign-cache.ts';
import { type Campaign, gateTtl, phaseOf } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { type AdmitResult, dedupeKey } from './gate.ts';
import type { AdmissionBody } from './schemas.ts';
import type { AttemptStats, Rejection } from './stats.ts';
import type { FlashSalesTrx } from './tables.ts';

/** How long a duplicate waits for its first attempt's commit (in flight in some process). */
const DUPLICATE_WAIT_MS = 3000;

export type Attempt = {
  tenantId: string;
  campaignId: string;
  customerId: string;
  ip: string;
  key: string;
  body: Static<typeof AdmissionBody>;
  meta: EventMeta;
};

export type AdmissionPorts = {
  cache: CampaignCache;
  stats: AttemptStats;
  submit(candidate: Candidate): Promise<Committed>;
  limits: { customer: { hit(key: string): number }; ip: { hit(key: string): number } };
};

/**
 * One purchase attempt, from the gate to the record: cheap refusals first (no such sale, not live,
 * over the limit, too fast), then the gate (one round trip, or none when it remembers the sale sold
 * out), then the group commit that makes the order. Answers the admission (new or replayed) or
 * throws the problem. Every answer is counted in the stats.
 */
export function admissionService(deps: FlashSalesDeps, ports: AdmissionPorts) {
  const rebuilding = new Map<string, Promise<void>>();

  /**
   * Installs the gate's state for a campaign from the record (one rebuild per campaign at a time in
   * this process). The units too come from the record, not from the cached campaign (read up to a
   * second ago: a change of units before the start, made by another process meanwhile, left the
   * gate sized to the old units, answering SOLD_OUT with units left when they had grown), read under
   * a share lock of the sale's row so that no batch commits between them and the admissions.
   */
  function rebuild(tenantId: string, campaign: Campaign): Promise<void> {
    let pending = rebuilding.get(campaign.id);
    if (!pending) {
      pending = withTenant(deps.db, tenantId, async (anyTrx) => {
        const trx = anyTrx as FlashSalesTrx;
        const row = await trx
          .selectFrom('flash_sales.campaigns')
          .select(['units', 'ends_at', 'payment_window_minutes'])
          .where('id', '=', campaign.id)
          .forShare()
          .executeTakeFirst();
        const current = row
          ? {
              units: row.units,
              endsAt: new Date(row.ends_at),
              paymentWindowMinutes: row.payment_window_minutes,
            }
          : campaign;
        return { state: await gateStateOf(trx, campaign.id, current.units), ttl: gateTtl(current) };
      })
        .then(({ state, ttl }) => deps.gate.load(campaign.id, state, ttl))
        .then(() => undefined)
        .finally(() => rebuilding.delete(campaign.id));
      rebuilding.set(campaign.id, pending);
    }
    return pending;
  }

  /** The admission the record holds under the attempt's key (409 IDEMPOTENCY_KEY_REUSED for another body). */
  async function recorded(a: Attempt, request: RequestFingerprint): Promise<Admission | undefined> {
    const { byKey } = await withTenant(deps.db, a.tenantId, (trx) =>
      customersOf(trx as FlashSalesTrx, a.campaignId, [a.customerId]),
    );
    const found = byKey.get(dedupeKey(a.customerId, a.key));
    if (found && !request.matches(found.requestHash)) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was used with another request');
    }
    return found;
  }

  /** The admission a duplicate attempt names, once its commit is visible (it may be in flight). */
  async function earlier(a: Attempt, request: RequestFingerprint): Promise<Admission> {
    const until = Date.now() + DUPLICATE_WAIT_MS;
    for (;;) {
      const found = await recorded(a, request);
      if (found) return found;
      if (Date.now() > until) {
        throw new AppError('CONFLICT', 'an attempt with this Idempotency-Key is still being recorded', {
          retryAfterSeconds: 1,
        });
      }
      await sleep(50);
    }
  }

  async function decide(a: Attempt, started: number): Promise<{ admission: Admission; replayed: boolean }> {
    // Every attempt counts against its customer's and its IP's limits before anything is read. The
    // route has no other limit (rateLimit: false), and counted only for a sale found and live, an
    // attempt on an id of no sale (each one a read of the database: a miss is not cached for another
    // id) or on a sale not yet started was never limited. An IP counts by clientKey (an IPv6 caller
    // by its /64, a mapped IPv4 as IPv4), as the platform's limits count it: by the full IPv6
    // address, the holder of one /64 had 2^64 fresh budgets.
    const wait = Math.max(ports.limits.customer.hit(a.customerId), ports.limits.ip.hit(clientKey(a.ip)));
    if (wait > 0) {
      // In the stats of a sale this process holds (never a read for it).
      const known = ports.cache.peek(a.tenantId, a.campaignId);
      if (known) ports.stats.record(known.id, 'rate_limited', Date.now() - started);
      throw new AppError('RATE_LIMITED', 'too many attempts; slow down', { retryAfterSeconds: wait });
    }
    const campaign = await ports.cache.get(a.tenantId, a.campaignId);
    if (!campaign) throw new AppError('NOT_FOUND', `flash sale ${a.campaignId} not found`);
    const reject = (reason: Rejection, error: unknown): unknown => {
      ports.stats.record(campaign.id, reason, Date.now() - started);
      return error;
    };
    const status = phaseOf(campaign, new Date(started));
    if (status !== 'live') {
      // The same key answers the same admission even once the sale ended or was cancelled (a
      // retry whose 202 was lost at the end): one read, made only for a sale that started, within
      // the attempt limits. Before the start no key can have been admitted.
      if (status !== 'scheduled') {
        const replay = await recorded(a, requestFingerprint(a.body));
        if (replay) {
          ports.stats.record(campaign.id, 'duplicate', Date.now() - started);
          return { admission: replay, replayed: true };
        }
      }
      throw reject('not_live', new AppError('NOT_LIVE', `flash sale ${campaign.id} is ${status}`));
    }
    const quantity = a.body.quantity ?? 1;
    const request = requestFingerprint(a.body);
    if (quantity > campaign.perCustomerLimit) {
      // Its key may have been admitted with another body: 409 IDEMPOTENCY_KEY_REUSED, whatever
      // else is wrong with this one. One read, made only for an attempt over the limit.
      const replay = await recorded(a, request);
      if (replay) {
        ports.stats.record(campaign.id, 'duplicate', Date.now() - started);
        return { admission: replay, replayed: true };
      }
      throw reject('limit_reached', limitReached(campaign, 0));
    }
    const orderId = uuidv7();
    const ask = () =>
      deps.gate.admit({
        campaignId: campaign.id,
        customerId: a.customerId,
        key: a.key,
        orderId,
        quantity,
        limit: campaign.perCustomerLimit,
      });
    let decision: AdmitResult;
    try {
      decision = await ask();
      if (decision.outcome === 'not_loaded') {
        await rebuild(a.tenantId, campaign);
        decision = await ask();
      }
    } catch (error) {
      throw reject('unavailable', error);
    }
    switch (decision.outcome) {
      case 'sold_out':
        throw reject('sold_out', soldOut(campaign));
      case 'limit_reached':
        throw reject('limit_reached', limitReached(campaign, campaign.perCustomerLimit));
      case 'not_loaded':
        throw reject(
          'unavailable',
          new AppError('SERVICE_UNAVAILABLE', 'the sale is being prepared', { retryAfterSeconds: 1 }),
        );
      case 'duplicate':
        ports.stats.record(campaign.id, 'duplicate', Date.now() - started);
        return { admission: await earlier(a, request), replayed: true };
    }
    let committed: Committed;
    try {
      committed = await ports.submit({
        tenantId: a.tenantId,
        campaignId: campaign.id,
        customerId: a.customerId,
        key: a.key,
        request,
        orderId,
        quantity,
        payment: a.body.payment
          ? { provider: a.body.payment.provider ?? 'test', token: a.body.payment.token }
          : undefined,
        shippingAddressId: a.body.shippingAddressId,
        meta: a.meta,
      });
    } catch (error) {
      // Not recorded: the gate's units go back (the key with them, so a retry is a new attempt).
      await deps.gate.giveBack(campaign.id, a.customerId, quantity, a.key).catch(() => false);
      throw reject('unavailable', error);
    }
    // gateSettled: the committer gave the units back and reconciled the gate already.
    const giveBack = () =>
      committed.gateSettled
        ? false
        : deps.gate.giveBack(campaign.id, a.customerId, quantity, a.key).catch(() => false);
    if (committed.outcome === 'refused') {
      await giveBack();
      throw reject(reasonOf(committed.error), committed.error);
    }
    if (committed.outcome === 'duplicate') {
      // The record had the key the gate had lost (a rebuild raced it): the gate's units go back.
      // A released admission's key stays at the gate, holding nothing, so that the next retry is
      // its duplicate there (not SOLD_OUT or LIMIT_REACHED once the sale or the customer has none).
      if (committed.admission.status === 'released' && !committed.gateSettled) {
        await deps.gate.release(campaign.id, a.customerId, quantity, a.key).catch(() => false);
      } else await giveBack();
      return { admission: committed.admission, replayed: true };
    }
    ports.stats.record(campaign.id, 'admitted', Date.now() - started);
    return { admission: committed.admission, replayed: false };
  }

  return {
    /** Decides an attempt; see admissionService. */
    admit: (a: Attempt) => decide(a, Date.now()),
  };
}

function reasonOf(error: AppError): Rejection {
  switch (error.code) {
    case 'SOLD_OUT':
      return 'sold_out';
    case 'LIMIT_REACHED':
      return 'limit_reached';
    case 'NOT_LIVE':
      return 'not_live';
    default:
      return 'invalid';
  }
}
