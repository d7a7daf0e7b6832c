import type { Redis } from 'ioredis';
import { GROUP, HISTORY_CAP } from './keys.ts';
import { DROPPED, ENSURE, REOPEN, RETIRE } from './retire-scripts.ts';

/**
 * The Lua scripts. Every script takes KEYS[1] = stream, KEYS[2] = delayed zset, KEYS[3] = parked
 * counter and ARGV[1] = the namespace's key base, from which it derives per-message keys
 * (`base:m:<id>` hash, `base:h:<id>` history list) and per-ordering-key ones (`base:k:<key>`
 * the message holding the key, `base:q:<key>` the list of messages parked behind it), all in
 * the namespace's hash tag.
 *
 * Order per key: one message of a key at a time is queued (stream or zset) or in flight; it holds
 * `base:k:<key>` until it is acked or dies (a retry keeps it), and later ones of the key wait in
 * `base:q:<key>`, in write order, never in the stream.
 *
 * A dropped namespace (its drop marker set: `dropped`, retire-scripts.ts) is written to by none:
 * each script checks the marker first and answers 'dropped'.
 */
const COMMON = `${DROPPED}
local base = ARGV[1]
local function mkey(id) return base .. ':m:' .. id end
-- A write makes the stream with its consumer group if it does not exist (Redis lost it), in the
-- step that adds to it.
local grouped = false
local function xadd(id, due)
  if not grouped and redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('XGROUP', 'CREATE', KEYS[1], '${GROUP}', '0', 'MKSTREAM')
  end
  grouped = true
  return redis.call('XADD', KEYS[1], '*', 'm', id, 'd', due)
end
local function enqueue(id, due, now)
  if tonumber(due) <= tonumber(now) then
    local eid = xadd(id, due)
    redis.call('HSET', mkey(id), 'entry', eid)
  else
    redis.call('ZADD', KEYS[2], due, id)
    redis.call('HSET', mkey(id), 'entry', '')
  end
end
local function live(id)
  local st = redis.call('HGET', mkey(id), 'state')
  return st and st ~= 'delivered' and st ~= 'dead'
end
-- Takes the key for id, or answers false when a live earlier message holds it.
local function acquire(key, id)
  local lock = base .. ':k:' .. key
  local holder = redis.call('GET', lock)
  if holder and holder ~= id and live(holder) then return false end
  redis.call('SET', lock, id)
  return true
end
local function park(key, id)
  redis.call('RPUSH', base .. ':q:' .. key, id)
  redis.call('INCR', KEYS[3])
  redis.call('HSET', mkey(id), 'entry', '')
end
-- id is done with its key: the next parked message of the key takes it and is queued.
local function release(key, id, now)
  if not key or key == '' then return end
  local lock = base .. ':k:' .. key
  if redis.call('GET', lock) ~= id then return end
  local q = base .. ':q:' .. key
  while true do
    local nxt = redis.call('LPOP', q)
    if not nxt then
      redis.call('DEL', lock)
      return
    end
    redis.call('DECR', KEYS[3])
    if live(nxt) then
      redis.call('SET', lock, nxt)
      enqueue(nxt, redis.call('HGET', mkey(nxt), 'nextAt'), now)
      return
    end
  end
end
local function drop(entry, group)
  if entry and entry ~= '' then
    redis.call('XACK', KEYS[1], group, entry)
    redis.call('XDEL', KEYS[1], entry)
  end
end
`;

/**
 * KEYS[4]: the namespace's retired marker: while it is set, the script writes nothing and answers
 * {'retired'} (the namespace moved off this backend; see RETIRE). KEYS[5]: its drop marker: while
 * it is set, {'dropped'} (the namespace was deleted; a writer does not know which one: any marker).
 * ARGV: base, now, revive ('1'|'0'), then 11 values per row (message.ts pushScriptRow: id, tenantId,
 * namespace, messageId, key, payload, headers, requestHash, dueAt, createdAt, maxAttempts).
 * Answers {'conflict', messageId...} (nothing written) or {'ok', then per row: status
 * ('new'|'replayed'|'revived'), id, state, dueAt, createdAt}.
 */
const APPEND = `${COMMON}
if redis.call('EXISTS', KEYS[4]) == 1 then return { 'retired' } end
if dropped(KEYS[5]) then return { 'dropped' } end
local now = ARGV[2]
local revive = ARGV[3] == '1'
local rows = {}
for i = 4, #ARGV, 11 do
  rows[#rows + 1] = { id = ARGV[i], tenantId = ARGV[i + 1], namespace = ARGV[i + 2], messageId = ARGV[i + 3],
    key = ARGV[i + 4], payload = ARGV[i + 5], headers = ARGV[i + 6], requestHash = ARGV[i + 7],
    dueAt = ARGV[i + 8], createdAt = ARGV[i + 9], maxAttempts = ARGV[i + 10] }
end
local seen, conflicts, plan = {}, {}, {}
for i, r in ipairs(rows) do
  local prev = seen[r.messageId]
  if prev then
    if prev ~= r.requestHash then conflicts[#conflicts + 1] = r.messageId end
    plan[i] = 'replay'
  else
    seen[r.messageId] = r.requestHash
    local stored = redis.call('HMGET', mkey(r.messageId), 'requestHash', 'state')
    if not stored[1] then
      plan[i] = 'new'
    elseif stored[1] ~= r.requestHash then
      conflicts[#conflicts + 1] = r.messageId
    elseif revive and stored[2] == 'dead' then
      plan[i] = 'revive'
    else
      plan[i] = 'replay'
    end
  end
end
if #conflicts > 0 then
  table.insert(conflicts, 1, 'conflict')
  return conflicts
end
local out = { 'ok' }
for i, r in ipairs(rows) do
  local h = mkey(r.messageId)
  local status = 'replayed'
  if plan[i] == 'new' then
    status = 'new'
    local state = 'pending'
    local later = tonumber(r.dueAt) > tonumber(now)
    if later then state = 'scheduled' end
    -- One HSET per new message, written after the queue entry so it can carry the entry id.
    local entry, parked = '', false
    if r.key ~= '' and not acquire(r.key, r.messageId) then
      parked = true
    elseif later then
      redis.call('ZADD', KEYS[2], r.dueAt, r.messageId)
    else
      entry = xadd(r.messageId, r.dueAt)
    end
    redis.call('HSET', h, 'id', r.id, 'tenantId', r.tenantId, 'namespace', r.namespace,
      'messageId', r.messageId, 'key', r.key, 'payload', r.payload, 'headers', r.headers,
      'requestHash', r.requestHash, 'dueAt', r.dueAt, 'createdAt', r.createdAt,
      'maxAttempts', r.maxAttempts, 'attempts', 0, 'targetsDone', '[]', 'state', state,
      'nextAt', r.dueAt, 'entry', entry)
    if parked then
      redis.call('RPUSH', base .. ':q:' .. r.key, r.messageId)
      redis.call('INCR', KEYS[3])
    end
    -- The writer knows the rest of a new message: one word answers it.
    out[#out + 1] = 'new'
  elseif plan[i] == 'revive' then
    status = 'revived'
    redis.call('PERSIST', h)
    redis.call('PERSIST', base .. ':h:' .. r.messageId)
    redis.call('HSET', h, 'attempts', 0, 'state', 'pending', 'lastError', '', 'deadAt', '',
      'targetsDone', '[]', 'lease', '', 'nextAt', now)
    local key = redis.call('HGET', h, 'key')
    if key ~= '' and not acquire(key, r.messageId) then
      park(key, r.messageId)
    else
      enqueue(r.messageId, now, now)
    end
  end
  if status ~= 'new' then
    local f = redis.call('HMGET', h, 'id', 'state', 'dueAt', 'createdAt')
    for _, v in ipairs({ status, f[1], f[2], f[3], f[4] }) do out[#out + 1] = v end
  end
end
return out
`;

/**
 * Moves due members of the delayed zset into the stream. KEYS[4]: the drop marker; ARGV: base,
 * now, limit, the served namespace's createdAt. Answers {moved, earliest remaining score or ''},
 * or {0, '', 'dropped'}.
 */
const MOVE = `${COMMON}
if dropped(KEYS[4], ARGV[4]) then return { 0, '', 'dropped' } end
local now = ARGV[2]
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[2], id)
  local st = redis.call('HGET', mkey(id), 'state')
  if st and st ~= 'delivered' and st ~= 'dead' then
    enqueue(id, redis.call('HGET', mkey(id), 'nextAt'), now)
    if st == 'scheduled' then redis.call('HSET', mkey(id), 'state', 'pending') end
  end
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return { #due, nxt[2] or '' }
`;

/**
 * The consumer's steady state in one round trip: applies finished deliveries' decisions (fenced,
 * as APPLY), takes the entries the blocking read handed over , then reads up to `fetch`
 * more entries (XREADGROUP without BLOCK) and takes them too, so a busy consumer needs no other
 * call. The lease token of a take is `<entry id>/<attempts>`: unique per lease, as every retry
 * gets a new entry and a takeover counts an attempt.
 * KEYS[4]: the drop marker. ARGV: base, group, consumer, now, fetch, n, the served namespace's
 * createdAt, then n decisions as JSON
 * {m: messageId, t: token, a: ack|retry|dead, d: delayMs, e: error, td: targetsDone JSON,
 * r: retention seconds, h: [history record JSON...]}, then (entry id, messageId) pairs to take.
 * Answers {results: 'ok'|'stale' per decision, taken: {entry id, token, HGETALL, history}...},
 * or, the namespace dropped, {results: 'dropped' each, {}, 'dropped'} (nothing applied nor read).
 */
const CYCLE = `${COMMON}
local group, consumer, now, fetch, n = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local results = {}
if dropped(KEYS[4], ARGV[7]) then
  for i = 1, n do results[i] = 'dropped' end
  return { results, {}, 'dropped' }
end
for i = 1, n do
  local d = cjson.decode(ARGV[7 + i])
  local h = mkey(d.m)
  local hist = base .. ':h:' .. d.m
  local f = redis.call('HMGET', h, 'state', 'lease', 'entry', 'key', 'messageId')
  if f[1] ~= 'delivering' or f[2] ~= d.t then
    results[i] = 'stale'
  else
    drop(f[3], group)
    for _, record in ipairs(d.h) do redis.call('RPUSH', hist, record) end
    redis.call('LTRIM', hist, -${HISTORY_CAP}, -1)
    if d.a == 'retry' then
      local at = now + tonumber(d.d)
      redis.call('HSET', h, 'state', 'retrying', 'lastError', d.e or '', 'targetsDone', d.td,
        'lease', '', 'entry', '', 'nextAt', at)
      redis.call('ZADD', KEYS[2], at, f[5])
    else
      if d.a == 'ack' then
        redis.call('HSET', h, 'state', 'delivered', 'deliveredAt', now, 'targetsDone', d.td,
          'lease', '', 'entry', '')
      else
        redis.call('HSET', h, 'state', 'dead', 'deadAt', now, 'lastError', d.e or '',
          'targetsDone', d.td, 'lease', '', 'entry', '')
      end
      release(f[4], f[5], now)
      local ttl = math.max(1, tonumber(d.r))
      redis.call('EXPIRE', h, ttl)
      redis.call('EXPIRE', hist, ttl)
    end
    results[i] = 'ok'
  end
end
local taken = {}
local function take(entry, id)
  local h = mkey(id)
  local f = redis.call('HMGET', h, 'state', 'entry', 'key', 'messageId')
  if (not f[1]) or f[2] ~= entry or f[1] == 'delivered' or f[1] == 'dead' then
    drop(entry, group)
    return
  end
  if f[3] ~= '' and not acquire(f[3], f[4]) then
    drop(entry, group)
    park(f[3], f[4])
    return
  end
  local attempts = redis.call('HINCRBY', h, 'attempts', 1)
  local token = entry .. '/' .. attempts
  redis.call('HSET', h, 'state', 'delivering', 'lease', token, 'leaseAt', now)
  taken[#taken + 1] = { entry, token, redis.call('HGETALL', h), redis.call('LRANGE', base .. ':h:' .. id, 0, -1) }
end
for i = 8 + n, #ARGV, 2 do take(ARGV[i], ARGV[i + 1]) end
-- A stream gone (Redis lost it) is not read: XREADGROUP would fail the whole call.
if fetch > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local reply = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', fetch, 'STREAMS', KEYS[1], '>')
  if reply then
    for _, e in ipairs(reply[1][2]) do
      local fields = e[2]
      local id
      for j = 1, #fields, 2 do if fields[j] == 'm' then id = fields[j + 1] end end
      if id then take(e[1], id) end
    end
  end
end
return { results, taken }
`;

type Script = (...args: Array<string | number>) => Promise<unknown>;

const DEFINITIONS = {
  append: { name: 'mercatoWalRsAppend', lua: APPEND, keys: 5 },
  move: { name: 'mercatoWalRsMove', lua: MOVE, keys: 4 },
  cycle: { name: 'mercatoWalRsCycle', lua: CYCLE, keys: 4 },
  ensure: { name: 'mercatoWalRsEnsure', lua: ENSURE, keys: 4 },
  retire: { name: 'mercatoWalRsRetire', lua: RETIRE, keys: 4 },
  reopen: { name: 'mercatoWalRsReopen', lua: REOPEN, keys: 5 },
} as const;

export type Scripts = Record<keyof typeof DEFINITIONS, Script>;

/** Defines the scripts on a connection (EVALSHA, falling back to EVAL once per connection). */
export function defineScripts(redis: Redis): Scripts {
  const commands = redis as unknown as Record<string, Script | undefined>;
  const bind = (def: { name: string; lua: string; keys: number }): Script => {
    if (typeof commands[def.name] !== 'function') {
      redis.defineCommand(def.name, { lua: def.lua, numberOfKeys: def.keys });
    }
    const fn = commands[def.name] as Script;
    // ioredis prefixes KEYS with the client's keyPrefix but not ARGV: the base must match them.
    const keyPrefix = redis.options.keyPrefix ?? '';
    if (!keyPrefix) return (...args) => fn.apply(redis, args);
    return (...args) =>
      fn.apply(
        redis,
        args.map((a, i) => (i === def.keys ? `${keyPrefix}${a}` : a)),
      );
  };
  return Object.fromEntries(Object.entries(DEFINITIONS).map(([key, def]) => [key, bind(def)])) as Scripts;
}
