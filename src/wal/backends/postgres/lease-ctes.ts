import { sql } from 'kysely';

// A row may be leased when no earlier message of its ordering key is still undelivered (index
// messages_key); its namespace's enabled flag is checked where the lease walks the namespaces.
const inKeyOrder = sql`(m.ordering_key is null or not exists (
    select 1 from wal.messages e
    where e.tenant_id = m.tenant_id and e.namespace = m.namespace
      and e.ordering_key = m.ordering_key and e.id < m.id
      and e.state not in ('delivered', 'dead')
  ))`;

/**
 * How much of the queue one consumer may hold, so that no namespace (and no tenant) takes the
 * lease slots another one needs: a namespace holds at most `prefetch` × its concurrency (capped at
 * `maxConcurrency`) and all of a tenant's namespaces together at most `tenantShare`.
 */
export type LeaseWindows = {
  /** Messages the consumer holds already (leased, outcome not recorded), per namespace. */
  held: { tenantId: string; namespace: string; count: number }[];
  /** Upper bound of any namespace's consumerConcurrency (MERCATO_WAL_MAX_CONCURRENCY). */
  maxConcurrency: number;
  /** Leased ahead of a free delivery slot: a namespace holds up to prefetch × its concurrency. */
  prefetch: number;
  /** What one tenant's namespaces may hold together. */
  tenantShare: number;
};

export type LeaseOptions = {
  limit: number;
  leaseMs: number;
  tenantIds?: string[] | undefined;
  windows?: LeaseWindows;
};

/**
 * The CTEs of a lease (see leaseMessages), ending in `leased`. `open_ns` lists the enabled
 * namespaces with their room (`windows`: what each namespace and its tenant may still hold; all of
 * `limit` without windows). `due` walks each open namespace's due messages in order
 * (messages_due_by_namespace) up to its room, `expired` the expired leases of open namespaces;
 * `candidates` keeps, oldest first, what fits each namespace's and then each tenant's room, up to
 * `limit`. Rows locked and not kept are released at commit. `exclude`: ids whose outcome the same
 * statement records (an expired lease of our own must not be re-leased there).
 */
export function leaseCtes(options: LeaseOptions, exclude = sql``) {
  const { limit, windows } = options;
  const tenantFilter = options.tenantIds ? sql`and n.tenant_id = any(${options.tenantIds}::uuid[])` : sql``;
  const held = JSON.stringify(
    (windows?.held ?? []).map((h) => ({ tenant_id: h.tenantId, namespace: h.namespace, n: h.count })),
  );
  const share = windows ? windows.tenantShare : limit;
  const window = windows
    ? sql`least(${windows.prefetch}::int * least(n.consumer_concurrency, ${windows.maxConcurrency}::int), ${share}::int)`
    : sql`${limit}::int`;
  return sql`
      held as (
        select h.tenant_id, h.namespace, sum(h.n)::int as n
        from jsonb_to_recordset(${held}::jsonb) as h(tenant_id uuid, namespace text, n integer)
        group by h.tenant_id, h.namespace
      ),
      held_by_tenant as (
        select h.tenant_id, sum(h.n)::int as n from held h group by h.tenant_id
      ),
      open_ns as (
        -- Joined, not a lookup per namespace: every enabled namespace is read each lease.
        select * from (
          select n.tenant_id, n.name,
            (${window} - coalesce(h.n, 0))::int as room,
            (${share}::int - coalesce(t.n, 0))::int as tenant_room
          from wal.namespaces n
          left join held h on h.tenant_id = n.tenant_id and h.namespace = n.name
          left join held_by_tenant t on t.tenant_id = n.tenant_id
          where n.enabled and not n.paused ${tenantFilter}
        ) o
        where o.room > 0 and o.tenant_room > 0
      ),
      due as (
        select o.tenant_id, o.name as namespace, o.room, o.tenant_room, d.id, d.due_at
        from open_ns o cross join lateral (
          select m.id, m.due_at from wal.messages m
          where m.tenant_id = o.tenant_id and m.namespace = o.name
            and m.state in ('scheduled', 'pending', 'retrying') and m.due_at <= now()
            and m.backend = 'postgres'
            and ${inKeyOrder}
          order by m.due_at, m.id
          limit least(o.room, o.tenant_room, ${limit}::int)
          for update of m skip locked
        ) d
      ),
      expired as (
        select o.tenant_id, o.name as namespace, o.room, o.tenant_room, x.id, x.due_at
        from (
          -- Walks messages_leased (the few delivering rows), checking each row's namespace by a
          -- scalar lookup: a join or exists would let the planner walk every message of each open
          -- namespace instead (10 ms per lease on a namespace of 20,000 messages).
          select m.id, m.tenant_id, m.namespace, m.due_at from wal.messages m
          where m.state = 'delivering' and m.lease_expires_at < now()
            and m.backend = 'postgres'
            ${exclude}
            and ${inKeyOrder}
            and coalesce((select true from open_ns o
              where o.tenant_id = m.tenant_id and o.name = m.namespace limit 1), false)
          order by m.due_at, m.id
          limit ${limit}
          for update of m skip locked
        ) x
        join open_ns o on o.tenant_id = x.tenant_id and o.name = x.namespace
      ),
      in_namespace as (
        select u.*, row_number() over (partition by u.tenant_id, u.namespace order by u.due_at, u.id) as k
        from (select * from due union all select * from expired) u
      ),
      in_tenant as (
        select i.id, i.due_at, i.tenant_room,
          row_number() over (partition by i.tenant_id order by i.due_at, i.id) as k
        from in_namespace i
        where i.k <= i.room
      ),
      candidates as (
        select c.id from in_tenant c
        where c.k <= c.tenant_room
        order by c.due_at, c.id
        limit ${limit}
      ),
      leased as (
        update wal.messages m
        set state = 'delivering',
            attempts = m.attempts + 1,
            lease_token = gen_random_uuid(),
            lease_expires_at = now() + ${options.leaseMs} * interval '1 millisecond'
        from candidates c
        where m.id = c.id
        returning m.id, m.tenant_id, m.namespace, m.message_id, m.ordering_key, m.payload, m.headers,
          m.attempts, m.max_attempts, m.targets_done, m.lease_token, m.lease_expires_at, m.due_at,
          m.created_at
      )`;
}
