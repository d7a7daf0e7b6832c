import type { OutgoingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import {
  AppError,
  eventMetaOf,
  isStaff,
  noBodyIsEmpty,
  principalOf,
  requireStaff,
} from '../platform/http/index.ts';
import { cancelCampaign, createCampaign, updateCampaign } from './campaign-service.ts';
import { campaignView, getCampaign, listCampaigns, readCursor } from './campaign-store.ts';
import { actorOf, type FlashSalesDeps } from './deps.ts';
import type { FlashSalesParts } from './parts.ts';
import {
  CampaignPage,
  CampaignPatchBody,
  CampaignView,
  CancelBody,
  IdParams,
  ListQuery,
  NewCampaignBody,
  SECURITY,
  StatsView,
} from './schemas.ts';
import type { FlashSalesTrx } from './tables.ts';
import { closeWaitingWindows } from './waiting-orders.ts';

const base = { tags: ['flash-sales'], security: SECURITY };
const write = requireStaff('flash-sales:write');
const read = requireStaff('flash-sales:read');
/** How long one stats stream lasts before the client reconnects. */
const STREAM_MS = 10 * 60_000;
/** Statuses whose stats still change (the stream goes on). */
const OPEN = ['scheduled', 'live', 'sold_out'];
/**
 * Stats streams one store may hold open at once in this process. Each reads the database and
 * checks its credential every second for up to ten minutes: unbounded, a store's staff (or a
 * leaked read key) opening streams at the request rate held thousands of them, a database read
 * each a second, shared by every store. A console needs one per watcher; more are 429.
 */
export const MAX_STREAMS_PER_STORE = 20;

/** /flash-sales: campaigns (staff), their stats and its live stream. */
export function campaignRoutes(deps: FlashSalesDeps, parts: FlashSalesParts) {
  /** Stats streams open in this process, per store (an entry only while it has one). */
  const streams = new Map<string, number>();
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/flash-sales',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            "Create a flash sale: its units leave available stock into the sale's pool at once (409 INSUFFICIENT_STOCK; 409 FLASH_SALE_LIMIT_REACHED past 100 sales not yet settled)",
          body: NewCampaignBody,
          response: { 201: CampaignView },
        },
      },
      async (request, reply) => {
        const { tenantId, actor } = actorOf(request);
        const campaign = await createCampaign(deps, tenantId, actor, request.body, eventMetaOf(request));
        reply.code(201).header('location', `/api/v1/flash-sales/${campaign.id}`);
        return campaignView(campaign);
      },
    );

    app.get(
      '/flash-sales',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: "The tenant's flash sales, newest first",
          querystring: ListQuery,
          response: { 200: CampaignPage },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        const page = await withTenant(deps.db, tenantId, (trx) =>
          listCampaigns(trx as FlashSalesTrx, {
            limit: request.query.limit ?? 20,
            after: readCursor(request.query.cursor),
            status: request.query.status as never,
          }),
        );
        const now = new Date();
        return { items: page.items.map((c) => campaignView(c, now)), nextCursor: page.nextCursor };
      },
    );

    app.get(
      '/flash-sales/:id',
      {
        preValidation: read,
        schema: { ...base, summary: 'One flash sale', params: IdParams, response: { 200: CampaignView } },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        return campaignView(
          await withTenant(deps.db, tenantId, (trx) => getCampaign(trx as FlashSalesTrx, request.params.id)),
        );
      },
    );

    app.put(
      '/flash-sales/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Change a flash sale before it starts (409 CAMPAIGN_STARTED after); units move between stock and its pool',
          params: IdParams,
          body: CampaignPatchBody,
          response: { 200: CampaignView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        const campaign = await updateCampaign(
          deps,
          tenantId,
          request.params.id,
          actor,
          request.body,
          eventMetaOf(request),
        );
        parts.cache.drop(tenantId, campaign.id);
        return campaignView(campaign);
      },
    );

    app.post(
      '/flash-sales/:id/cancel',
      {
        // A cancel without a reason may come without a body.
        preValidation: [write, noBodyIsEmpty],
        schema: {
          ...base,
          summary:
            'Cancel a flash sale that has not ended: unpaid orders are cancelled and the unsold units go back to stock (a sale with thousands of unpaid orders answers within seconds while the rest are cancelled: admitted falls to 0)',
          params: IdParams,
          body: CancelBody,
          response: { 200: CampaignView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        const meta = eventMetaOf(request);
        const campaign = await cancelCampaign(
          deps,
          tenantId,
          request.params.id,
          actor,
          request.body?.reason,
          meta,
          (trx, c) => closeWaitingWindows(trx, c.id),
        );
        parts.cache.drop(tenantId, campaign.id);
        // Its waiting orders cancelled in bounded transactions after the cancel's own (also when
        // it was cancelled already: a cancel interrupted is finished), answering once they are
        // or after a few seconds, while they go on (parts.cancelWaiting).
        await parts.cancelWaiting(tenantId, campaign.id, actor, meta);
        return campaignView(
          await withTenant(deps.db, tenantId, (trx) => getCampaign(trx as FlashSalesTrx, campaign.id)),
        );
      },
    );

    app.get(
      '/flash-sales/:id/stats',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: "A flash sale's FlashSaleStats",
          params: IdParams,
          response: { 200: StatsView },
        },
      },
      async (request) => parts.stats(principalOf(request).tenantId, request.params.id),
    );

    app.get(
      '/flash-sales/:id/stats/stream',
      {
        preValidation: read,
        schema: {
          ...base,
          summary:
            'The same stats as server-sent events (event: stats), every second while the sale is live, then a last one',
          params: IdParams,
          produces: ['text/event-stream'],
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const held = streams.get(tenantId) ?? 0;
        if (held >= MAX_STREAMS_PER_STORE) {
          throw new AppError(
            'RATE_LIMITED',
            `a store may watch at most ${MAX_STREAMS_PER_STORE} stats streams at once: close one, or read /stats`,
            { retryAfterSeconds: 10 },
          );
        }
        streams.set(tenantId, held + 1);
        try {
          await streamStats(request, reply, tenantId, request.params.id);
        } finally {
          const left = (streams.get(tenantId) ?? 1) - 1;
          if (left > 0) streams.set(tenantId, left);
          else streams.delete(tenantId);
        }
      },
    );
  };

  /** The stream itself: the first stats, then one a second while the sale can still change. */
  async function streamStats(
    request: FastifyRequest,
    reply: FastifyReply,
    tenantId: string,
    id: string,
  ): Promise<void> {
    const first = await parts.stats(tenantId, id);
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, {
      // The CORS and security headers the platform set on the reply (a hijacked answer sends
      // only what is written here: a console on another origin could not read the stream).
      ...(reply.getHeaders() as OutgoingHttpHeaders),
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': String(request.id),
    });
    const send = (stats: unknown) => out.write(`event: stats\ndata: ${JSON.stringify(stats)}\n\n`);
    let open = true;
    // The response's close (the client went, or the connection did); the request's own 'close'
    // fires as soon as its (empty) body has been read.
    out.on('close', () => {
      open = false;
    });
    // One read a second, never two at once, and for STREAM_MS at most: a stream holds no
    // connection and no timer past that (EventSource reconnects), whatever the sale's length.
    const until = Date.now() + STREAM_MS;
    let stats = first;
    send(stats);
    while (open && OPEN.includes(stats.status) && Date.now() < until) {
      await sleep(1000);
      if (!open) break;
      // The credential checked again each second: a session revoked, a user disabled or
      // demoted, a key revoked ends the stream as it would refuse their next request.
      const now = await request.reauthenticate();
      if (!open || !now || now.tenantId !== tenantId || !isStaff(now, 'flash-sales:read')) break;
      try {
        stats = await parts.stats(tenantId, id);
      } catch {
        break;
      }
      if (open) send(stats);
    }
    out.end();
  }
}
