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
 * Due messages a lease reads past a namespace's room, at most: where more wait behind their keys,
 * the ones up to there are parked, and the next lease reads on.
 */
export const PARK_SLACK = 64;
/** The longest a message stays parked before the lease looks at it again, whatever its head does. */
const PARK_MAX = sql`interval '15 minutes'`;
const LAST_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

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
 * The CTEs of a lease (see leaseMessages), ending in `leased`. `walk_ns` lists the enabled
 * namespaces holding waiting messages, with their room (`windows`: what each namespace and its
 * tenant may still hold; all of `limit` without windows). `due` walks each one's due messages in order
 * (messages_due_by_namespace) up to its room, but not past `bounds` (room + PARK_SLACK due
 * messages), `expired` the expired leases of open namespaces; `candidates` keeps, oldest first,
 * what fits each namespace's and then each tenant's room, up to `limit`. Where a walk reached its
 * bound, `parked` sets aside the messages up to it that wait behind their key (`blocked`), so the
 * next lease reads past them, and a namespace with thousands waiting behind one key costs a lease
 * no more than one without. Rows locked and not kept are released at commit. `exclude`: ids whose
 * outcome the same statement records (an expired lease of our own must not be re-leased there);
 * `busyKeys`: the name of a CTE of the same statement listing (tenant_id, namespace,
 * ordering_key) of those messages, whose followers are not parked there. The statement's WITH
 * must be `with recursive` (`waiting_ns`, the namespaces holding waiting messages, is).
 */
export function leaseCtes(options: LeaseOptions, exclude = sql``, busyKeys?: string) {
  const { limit, windows } = options;
  // Keys whose message this statement records: not parked here (their head's row is this
  // statement's own update); the next lease sees the outcome.
  const notBusy = busyKeys
    ? sql`and not exists (select 1 from ${sql.raw(busyKeys)} r
        where r.tenant_id = w.tenant_id and r.namespace = w.namespace and r.ordering_key = w.ordering_key)`
    : sql``;
  const tenantFilter = options.tenantIds ? sql`and n.tenant_id = any(${options.tenantIds}::uuid[])` : sql``;
  const held = JSON.stringify(
    (windows?.held ?? []).map((h) => ({ tenant_id: h.tenantId, namespace: h.namespace, n: h.count })),
  );
  const share = windows ? windows.tenantShare : limit;
  const window = windows
    ? sql`least(${windows.prefetch}::int * least(n.consumer_concurrency, ${windows.maxConcurrency}::int), ${share}::int)`
    : sql`${limit}::int`;
  // The namespace of the row aliased `alias` (its tenant_id and namespace), looked up by its
  // primary key, if it is enabled, not paused and has room, with it.
  const openNamespaceOf = (alias: string) => sql`
        select * from (
          select n.tenant_id, n.name,
            (${window} - coalesce(h.n, 0))::int as room,
            (${share}::int - coalesce(t.n, 0))::int as tenant_room
          from wal.namespaces n
          left join held h on h.tenant_id = n.tenant_id and h.namespace = n.name
          left join held_by_tenant t on t.tenant_id = n.tenant_id
          where n.tenant_id = ${sql.ref(`${alias}.tenant_id`)} and n.name = ${sql.ref(`${alias}.namespace`)}
            and n.enabled and not n.paused ${tenantFilter}
        ) o
        where o.room > 0 and o.tenant_room > 0
        -- One row by its key; the limit also keeps the planner from flattening a lateral over it
        -- into a join that reads every namespace.
        limit 1`;
  return sql`
      held as (
        select h.tenant_id, h.namespace, sum(h.n)::int as n
        from jsonb_to_recordset(${held}::jsonb) as h(tenant_id uuid, namespace text, n integer)
        group by h.tenant_id, h.namespace
      ),
      held_by_tenant as (
        select h.tenant_id, sum(h.n)::int as n from held h group by h.tenant_id
      ),
      waiting_ns as (
        -- The namespaces holding any waiting message (due or not), found one index probe each
        -- (messages_due_by_namespace, skipping from one namespace to the next): an empty
        -- namespace, as most of a large deployment's are at any moment, costs a lease nothing. A
        -- statement that only records outcomes (limit 0) looks for none, so walks and parks nothing.
        (select m.tenant_id, m.namespace from wal.messages m
          where ${limit}::int > 0 and m.backend = 'postgres' and m.state in ('scheduled', 'pending', 'retrying')
          order by m.tenant_id, m.namespace
          limit 1)
        union all
        select x.tenant_id, x.namespace from waiting_ns p cross join lateral (
          select m.tenant_id, m.namespace from wal.messages m
          where m.backend = 'postgres' and m.state in ('scheduled', 'pending', 'retrying')
            and (m.tenant_id, m.namespace) > (p.tenant_id, p.namespace)
          order by m.tenant_id, m.namespace
          limit 1) x
      ),
      walk_ns as (
        -- The open namespaces with room that hold waiting messages: the ones a lease walks, each
        -- looked up by its key.
        select o.* from waiting_ns w cross join lateral (${openNamespaceOf('w')}) o
      ),
      bounds as (
        -- Where each open namespace's walk stops: its (room + PARK_SLACK)-th due message, when it
        -- has that many. A lease reads no further, however many messages wait behind their keys.
        select o.tenant_id, o.name, b.due_at, b.id
        from walk_ns o cross join lateral (
          select m.due_at, m.id from wal.messages m
          where m.tenant_id = o.tenant_id and m.namespace = o.name
            and m.state in ('scheduled', 'pending', 'retrying') and m.due_at <= now()
            and m.backend = 'postgres'
          order by m.due_at, m.id
          offset least(o.room, o.tenant_room, ${limit}::int) + ${PARK_SLACK - 1}::int
          limit 1
        ) b
      ),
      due as (
        select o.tenant_id, o.name as namespace, o.room, o.tenant_room, d.id, d.due_at
        from walk_ns o left join bounds b on b.tenant_id = o.tenant_id and b.name = o.name
        cross join lateral (
          select m.id, m.due_at from wal.messages m
          where m.tenant_id = o.tenant_id and m.namespace = o.name
            and m.state in ('scheduled', 'pending', 'retrying') and m.due_at <= now()
            and m.backend = 'postgres'
            -- One row comparison (no OR), so the index scan itself stops at the bound.
            and (m.due_at, m.id) <= (coalesce(b.due_at, 'infinity'), coalesce(b.id, ${LAST_UUID}::uuid))
            and ${inKeyOrder}
          order by m.due_at, m.id
          limit least(o.room, o.tenant_room, ${limit}::int)
          for update of m skip locked
        ) d
      ),
      blocked as (
        -- In a namespace whose walk reached its bound: the messages up to it that wait behind an
        -- earlier message of their key (its first undelivered one: the key's head).
        select m.id, m.head_id
        from bounds b cross join lateral (
          -- The head found once per message (messages_key): its lateral keeps only those that
          -- have one, and only those are locked.
          select w.id, h.id as head_id
          from wal.messages w cross join lateral (
            select e.id from wal.messages e
            where e.tenant_id = w.tenant_id and e.namespace = w.namespace
              and e.ordering_key = w.ordering_key and e.id < w.id
              and e.state not in ('delivered', 'dead')
            order by e.id limit 1) h
          where w.tenant_id = b.tenant_id and w.namespace = b.name
            and w.state in ('scheduled', 'pending', 'retrying') and w.due_at <= now()
            and w.backend = 'postgres' and w.ordering_key is not null
            and (w.due_at, w.id) <= (b.due_at, b.id) ${notBusy}
          for update of w skip locked
        ) m
      ),
      heads as (
        -- The heads, held FOR SHARE while their followers are parked: a head's outcome cannot commit
        -- meanwhile, and one delivered or dead since this statement began is not held (its state
        -- is checked again on the newest row), so nothing is parked behind a head already gone.
        select e.id,
          case when e.state = 'delivering' then e.lease_expires_at else e.due_at end as wakes_at
        from wal.messages e
        where e.id in (select b.head_id from blocked b) and e.state not in ('delivered', 'dead')
        for share of e skip locked
      ),
      parked as (
        -- Parked until their head may next change (its due time or lease expiry; at least a
        -- second, at most PARK_MAX): when it is delivered or dead, its outcome's statement gives the
        -- next message of the key its due time back (wal.unpark_next, migration 0051).
        update wal.messages m
        set parked_due_at = coalesce(m.parked_due_at, m.due_at),
            due_at = least(greatest(h.wakes_at, now() + interval '1 second'), now() + ${PARK_MAX})
        from blocked b join heads h on h.id = b.head_id
        where m.id = b.id
        returning m.id
      ),
      expired as (
        select o.tenant_id, o.name as namespace, o.room, o.tenant_room, x.id, x.due_at
        from (
          -- Walks messages_leased (the few delivering rows), checking each row's namespace by a
          -- scalar lookup of its primary key: a join or exists would let the planner walk every
          -- message of each open namespace instead (10 ms per lease on a namespace of 20,000
          -- messages), and a list of every open namespace would read all of them (thousands in a
          -- large deployment) while a lease of a paused or disabled one lies expired.
          select m.id, m.tenant_id, m.namespace, m.due_at from wal.messages m
          where m.state = 'delivering' and m.lease_expires_at < now()
            and m.backend = 'postgres'
            ${exclude}
            and ${inKeyOrder}
            and coalesce((select true from (${openNamespaceOf('m')}) o), false)
          order by m.due_at, m.id
          limit ${limit}
          for update of m skip locked
        ) x
        cross join lateral (${openNamespaceOf('x')}) o
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
            -- A parked message whose park ran out, leased now: it fell due at parked_due_at.
            due_at = coalesce(m.parked_due_at, m.due_at), parked_due_at = null,
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
