#pragma once
// The cluster registry's layout in Redis, and the Lua scripts that change it atomically.
//
//   cs:inst:{inst}       HASH url, state (serving|draining), streams, capacity, started,
//                        heartbeat (ms)                              EXPIRE ttl, each heartbeat
//   cs:insts             ZSET inst -> last heartbeat ms (enumerate without SCAN; pruned by score)
//   cs:calls:{inst}      HASH CallSid -> the call's JSON with "instance"      EXPIRE ttl
//   cs:streams:{inst}    HASH StreamSid -> CallSid                           EXPIRE ttl
//   cs:owner:{CallSid}   STRING inst: one owner per call cluster-wide        EX ttl
//   cs:stream:{StreamSid} STRING inst                                        EX ttl
//   cs:bus:{inst}        pub/sub channel: forwarded requests to, and answers for, {inst}
//
// Every key of an instance expires `ttl` after its last heartbeat, so a killed instance's
// entries vanish on their own; the heartbeat script refreshes them all in one command (its
// work inside Redis grows with the calls held, its traffic does not). Scripts name keys they
// derive from others (cs:owner:…) without declaring them: fine on one Redis (or a primary with
// replicas), not on Redis Cluster, which callstream does not use.
//
// Pure data; any thread.

#include <string>
#include <string_view>

namespace callstream::server::cluster_keys {

inline std::string instance(std::string_view inst) {
    return "cs:inst:" + std::string(inst);
}
inline const std::string instances = "cs:insts";
inline std::string calls(std::string_view inst) {
    return "cs:calls:" + std::string(inst);
}
inline std::string streams(std::string_view inst) {
    return "cs:streams:" + std::string(inst);
}
inline std::string owner(std::string_view call_sid) {
    return "cs:owner:" + std::string(call_sid);
}
inline std::string stream(std::string_view stream_sid) {
    return "cs:stream:" + std::string(stream_sid);
}
inline std::string bus(std::string_view inst) {
    return "cs:bus:" + std::string(inst);
}

// KEYS owner, stream, calls, streams; ARGV inst, CallSid, StreamSid, call JSON, ttl.
// Returns 1 when the call is ours now, or the name of the instance that already owns it.
inline constexpr std::string_view claim_script = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[5])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('EXPIRE', KEYS[4], ARGV[5])
return 1
)lua";

// KEYS owner, stream, calls, streams; ARGV inst, CallSid, StreamSid. Deletes only what is ours.
inline constexpr std::string_view release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[3])
return 1
)lua";

// KEYS instance, instances, calls, streams; ARGV inst, ttl, now ms, url, state, streams,
// capacity, started. Returns how many streams Redis holds for us (a mismatch means Redis lost
// data: the instance re-registers what it holds).
inline constexpr std::string_view heartbeat_script = R"lua(
redis.call('HSET', KEYS[1], 'url', ARGV[4], 'state', ARGV[5], 'streams', ARGV[6],
           'capacity', ARGV[7], 'started', ARGV[8], 'heartbeat', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - 1000 * tonumber(ARGV[2]))
local s = redis.call('HGETALL', KEYS[4])
for i = 1, #s, 2 do
  redis.call('EXPIRE', 'cs:stream:' .. s[i], ARGV[2])
  redis.call('EXPIRE', 'cs:owner:' .. s[i + 1], ARGV[2])
end
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[4], ARGV[2])
return #s / 2
)lua";

// KEYS instance, instances, calls, streams; ARGV inst. An instance leaving says goodbye.
inline constexpr std::string_view goodbye_script = R"lua(
local s = redis.call('HGETALL', KEYS[4])
for i = 1, #s, 2 do
  if redis.call('GET', 'cs:stream:' .. s[i]) == ARGV[1] then redis.call('DEL', 'cs:stream:' .. s[i]) end
  if redis.call('GET', 'cs:owner:' .. s[i + 1]) == ARGV[1] then redis.call('DEL', 'cs:owner:' .. s[i + 1]) end
end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
)lua";

// No keys. Every live instance's calls, as their JSON strings.
inline constexpr std::string_view list_calls_script = R"lua(
local out = {}
for _, inst in ipairs(redis.call('ZRANGE', 'cs:insts', 0, -1)) do
  local h = redis.call('HGETALL', 'cs:calls:' .. inst)
  for i = 2, #h, 2 do out[#out + 1] = h[i] end
end
return out
)lua";

// KEYS owner; ARGV CallSid. The call's JSON from its owner's hash, or nil.
inline constexpr std::string_view find_call_script = R"lua(
local inst = redis.call('GET', KEYS[1])
if not inst then return false end
return redis.call('HGET', 'cs:calls:' .. inst, ARGV[1])
)lua";

} // namespace callstream::server::cluster_keys
