import type { Redis } from 'ioredis';

// The gate's Lua scripts (gate-redis.ts): each one round trip, touching one campaign's keys.

// KEYS of every campaign script: 1 remaining, 2 customers, 3 keys, 4 loaded, 5 watch (a
// reconciliation's: while it exists, every key an admission or a give-back touches is noted in it).
const ADMIT = `
local version = redis.call('GET', KEYS[4])
if not version then return {'not_loaded'} end
local remaining = tonumber(redis.call('GET', KEYS[1]))
if not remaining then return {'not_loaded'} end
local prior = redis.call('HGET', KEYS[3], ARGV[1])
if prior then return {'duplicate', prior} end
local q = tonumber(ARGV[4])
local count = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if count + q > tonumber(ARGV[5]) then return {'limit_reached'} end
if remaining < q then return {'sold_out', remaining, version} end
local t = redis.call('TIME')
local now = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
remaining = redis.call('DECRBY', KEYS[1], q)
redis.call('HINCRBY', KEYS[2], ARGV[2], q)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3] .. '|' .. now .. '|' .. ARGV[4])
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HSET', KEYS[5], ARGV[1], '1') end
-- A hash created by this admission (none was loaded) takes the campaign's expiry.
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) == -1 then
    local at = redis.call('PEXPIRETIME', KEYS[4])
    if at > 0 then redis.call('PEXPIREAT', KEYS[i], at) end
  end
end
return {'admitted', remaining}
`;

// ARGV: customer, quantity, dedupe key ('' for none), channel, campaign id, mode: 'drop' (an
// attempt never recorded: its key goes, a retry is a new attempt) or 'keep' (a recorded admission
// released: its key stays, holding 0 units, so a retry is its duplicate). A key holding 0 units
// (released already) gives nothing back and stays, whatever the mode.
const GIVE_BACK = `
if redis.call('EXISTS', KEYS[4]) == 0 or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[3] ~= '' then
  local held = redis.call('HGET', KEYS[3], ARGV[3])
  if not held then return 0 end
  local cut = string.find(held, '|[^|]*$')
  if cut and string.sub(held, cut + 1) == '0' then return 0 end
  if ARGV[6] == 'keep' then
    if cut then held = string.sub(held, 1, cut) .. '0' else held = held .. '|0|0' end
    redis.call('HSET', KEYS[3], ARGV[3], held)
  else
    redis.call('HDEL', KEYS[3], ARGV[3])
  end
  if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HSET', KEYS[5], ARGV[3], '1') end
end
local q = tonumber(ARGV[2])
if redis.call('HINCRBY', KEYS[2], ARGV[1], -q) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
redis.call('INCRBY', KEYS[1], q)
redis.call('INCR', KEYS[4])
redis.call('PUBLISH', ARGV[4], redis.call('GET', KEYS[4]) .. '|' .. ARGV[5])
return 1
`;

// KEYS[1] the staging hash; ARGV[1] its TTL (ms), then field, value pairs.
const STAGE = `
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

// KEYS 6, 7 and 8: the staging hashes of customers, keys and the keys to carry (a fenced reset's
// attempts in flight). ARGV: mode (load|reset), remaining, ttl ms, customers expected, keys
// expected, channel, campaign id, the fence's watch token ('' for none), keys to carry expected.
// Answers 1 installed, 0 already loaded (load only), -1 staging incomplete (expired meanwhile),
// -2 the fence's watch lost (another watch, reset, load or drop since, or it expired).
// A fenced reset merges, for every key its watch saw and every key to carry, what the live gate
// holds into the staged record, as mergeWatched (gate.ts) does: a key the record lacks that the
// gate holds with units is carried over (its units taken from remaining, counted for its
// customer); a key the record holds that the gate released since (0 units, the same order) is
// released; anything else stays as the record has it. One script: no admission falls between.
const COMMIT = `
local function clean() redis.call('DEL', KEYS[6], KEYS[7], KEYS[8]) end
if ARGV[1] == 'load' and redis.call('EXISTS', KEYS[4]) == 1 then
  clean()
  return 0
end
if redis.call('HLEN', KEYS[6]) ~= tonumber(ARGV[4]) or redis.call('HLEN', KEYS[7]) ~= tonumber(ARGV[5])
  or redis.call('HLEN', KEYS[8]) ~= tonumber(ARGV[9]) then
  clean()
  return -1
end
local remaining = tonumber(ARGV[2])
if ARGV[8] ~= '' then
  if redis.call('HGET', KEYS[5], '') ~= ARGV[8] then
    clean()
    return -2
  end
  local function held(v)
    local order, q = string.match(v, '^(.*)|[^|]*|(%d+)$')
    if not order then return v, 1 end
    return order, tonumber(q)
  end
  local function merge(key)
    if key == '' then return end
    local live = redis.call('HGET', KEYS[3], key)
    if not live then return end
    local liveOrder, liveQ = held(live)
    local staged = redis.call('HGET', KEYS[7], key)
    local delta = 0
    if not staged then
      delta = liveQ
    elseif liveQ == 0 then
      local stagedOrder, stagedQ = held(staged)
      if stagedOrder == liveOrder then delta = -stagedQ end
    end
    if delta == 0 then return end
    redis.call('HSET', KEYS[7], key, live)
    local customer = string.sub(key, 1, string.find(key, ':', 1, true) - 1)
    if redis.call('HINCRBY', KEYS[6], customer, delta) <= 0 then redis.call('HDEL', KEYS[6], customer) end
    remaining = remaining - delta
  end
  for _, key in ipairs(redis.call('HKEYS', KEYS[5])) do merge(key) end
  for _, key in ipairs(redis.call('HKEYS', KEYS[8])) do merge(key) end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[8])
if redis.call('EXISTS', KEYS[6]) == 1 then redis.call('RENAME', KEYS[6], KEYS[2]) end
if redis.call('EXISTS', KEYS[7]) == 1 then redis.call('RENAME', KEYS[7], KEYS[3]) end
local t = redis.call('TIME')
local at = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3])
local version = string.format('%d', t[1] * 1000000 + t[2])
redis.call('SET', KEYS[1], string.format('%d', remaining))
redis.call('SET', KEYS[4], version)
for i = 1, 4 do redis.call('PEXPIREAT', KEYS[i], string.format('%d', at)) end
redis.call('PUBLISH', ARGV[6], version .. '|' .. ARGV[7])
return 1
`;

// ARGV: the watch's token, its TTL (ms). Starts a watch (ending any other) of a loaded campaign.
const WATCH = `
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], '', ARGV[1])
redis.call('PEXPIRE', KEYS[5], ARGV[2])
return 1
`;

// ARGV: the watch's token. Ends the watch if it is still that one.
const UNWATCH = `
if redis.call('HGET', KEYS[5], '') == ARGV[1] then redis.call('DEL', KEYS[5]) end
return 1
`;

// ARGV: channel, campaign id.
const DROP = `
local n = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
if n > 0 then redis.call('PUBLISH', ARGV[1], '|' .. ARGV[2]) end
return n
`;

export type Script = (...args: Array<string | number>) => Promise<unknown>;
export type Scripts = {
  admit: Script;
  giveBack: Script;
  stage: Script;
  commit: Script;
  drop: Script;
  watch: Script;
  unwatch: Script;
};

/** Defines the scripts on the gate's connection: EVALSHA, falling back to EVAL once. */
export function defineScripts(redis: Redis): Scripts {
  const commands = redis as unknown as Record<string, Script>;
  const define = (name: string, lua: string, keys: number): Script => {
    redis.defineCommand(name, { lua, numberOfKeys: keys });
    const fn = commands[name]!;
    return (...args) => fn.apply(redis, args);
  };
  return {
    admit: define('mercatoFlashAdmit', ADMIT, 5),
    giveBack: define('mercatoFlashGiveBack', GIVE_BACK, 5),
    stage: define('mercatoFlashStage', STAGE, 1),
    commit: define('mercatoFlashCommit', COMMIT, 8),
    drop: define('mercatoFlashDrop', DROP, 5),
    watch: define('mercatoFlashWatch', WATCH, 5),
    unwatch: define('mercatoFlashUnwatch', UNWATCH, 5),
  };
}
