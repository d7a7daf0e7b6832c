import type { Redis } from 'ioredis';

// The gate's Lua scripts (gate-redis.ts): each one round trip, touching one campaign's keys.

// KEYS of every campaign script: 1 remaining, 2 customers, 3 keys, 4 loaded.
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

// KEYS 5 and 6: the staging hashes of customers and keys. ARGV: mode (load|reset), remaining,
// ttl ms, customers expected, keys expected, channel, campaign id.
// Answers 1 installed, 0 already loaded (load only), -1 staging incomplete (expired meanwhile).
const COMMIT = `
if ARGV[1] == 'load' and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('DEL', KEYS[5], KEYS[6])
  return 0
end
if redis.call('HLEN', KEYS[5]) ~= tonumber(ARGV[4]) or redis.call('HLEN', KEYS[6]) ~= tonumber(ARGV[5]) then
  redis.call('DEL', KEYS[5], KEYS[6])
  return -1
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if tonumber(ARGV[4]) > 0 then redis.call('RENAME', KEYS[5], KEYS[2]) end
if tonumber(ARGV[5]) > 0 then redis.call('RENAME', KEYS[6], KEYS[3]) end
local t = redis.call('TIME')
local at = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3])
local version = string.format('%d', t[1] * 1000000 + t[2])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[4], version)
for i = 1, 4 do redis.call('PEXPIREAT', KEYS[i], string.format('%d', at)) end
redis.call('PUBLISH', ARGV[6], version .. '|' .. ARGV[7])
return 1
`;

// ARGV: channel, campaign id.
const DROP = `
local n = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
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
    admit: define('mercatoFlashAdmit', ADMIT, 4),
    giveBack: define('mercatoFlashGiveBack', GIVE_BACK, 4),
    stage: define('mercatoFlashStage', STAGE, 1),
    commit: define('mercatoFlashCommit', COMMIT, 6),
    drop: define('mercatoFlashDrop', DROP, 4),
  };
}
