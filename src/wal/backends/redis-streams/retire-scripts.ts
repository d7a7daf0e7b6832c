// The scripts of a namespace's life on Redis: its consumer group made (`ensure`), the drop marker
// every script checks, and a namespace that moves off Redis and back (`retire()`, `reopen()`).
// See README.md.
import { GROUP } from './keys.ts';

/**
 * Lua: whether the namespace was dropped here (its deletion; `drop` in drop-keys.ts) for the
 * namespace served as of `createdAt`: its drop marker `marker` names it, or any ('*'). A marker
 * of another namespace (one deleted before this one was made under the same name) is deleted.
 * `createdAt` nil (a writer, who does not know it): any marker answers true.
 */
export const DROPPED = `
local function dropped(marker, createdAt)
  local m = redis.call('GET', marker)
  if not m then return false end
  if createdAt == nil or m == '*' or m == createdAt then return true end
  redis.call('DEL', marker)
  return false
end
`;

/**
 * The consumer's group on the namespace's stream, made with the stream (MKSTREAM) unless the
 * namespace was dropped (the drop marker, KEYS[4]): a consumer that has not yet heard of the
 * deletion does not make its stream again. KEYS as MOVE (stream, delayed, parked, drop marker);
 * ARGV: base, the served namespace's createdAt. Answers 'ok' or 'dropped'.
 */
export const ENSURE = `${DROPPED}
if dropped(KEYS[4], ARGV[2]) then return 'dropped' end
local made = redis.pcall('XGROUP', 'CREATE', KEYS[1], '${GROUP}', '0', 'MKSTREAM')
if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP') then
  return redis.error_reply(made.err)
end
return 'ok'
`;

/**
 * Retires the namespace here when nothing of it is left to deliver: no stream entry (due, read
 * and not yet decided, or in flight: an entry leaves the stream only when its decision is
 * applied), no member of the delayed set (scheduled, retrying) and no message parked behind
 * another of its key. Then sets the retired marker (KEYS[4]), so that every later append is
 * refused (APPEND checks it in the same atomic step a write would take), and lets the empty
 * stream and the parked counter expire after ARGV[3] seconds (consumers may still read the stream
 * until they hear the namespace moved; finished messages' hashes expire by their retention).
 * KEYS as APPEND; ARGV: base, now, ttl. Answers 1 when retired, 0 when something is left.
 */
export const RETIRE = `
if redis.call('XLEN', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0
  or (tonumber(redis.call('GET', KEYS[3]) or '0') or 0) > 0 then
  return 0
end
redis.call('SET', KEYS[4], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
return 1
`;

/**
 * Takes appends again (the namespace names this backend again, or was made again under the name
 * after a deletion): clears what RETIRE set and the drop marker. KEYS as APPEND.
 */
export const REOPEN = `
redis.call('DEL', KEYS[4], KEYS[5])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[3])
return 1
`;
